// The tabs suite (tabs.test.mjs) again with OPFS storage: the same tests, the other store.
globalThis.EDGEBUS_STORAGE = "opfs";
await import("./tabs.test.mjs");
