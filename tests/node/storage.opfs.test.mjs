// The storage suite (storage.test.mjs) again with OPFS storage: the same tests, the other store.
globalThis.EDGEBUS_STORAGE = "opfs";
await import("./storage.test.mjs");
