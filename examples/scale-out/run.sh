#!/usr/bin/env bash
# Walsearch as separate processes on one machine, everything on 127.0.0.1:
#
#   * a three-node NATS cluster (JetStream), the nats-server on PATH when it
#     is at least the version go.mod requires, else built from that module;
#   * a throwaway PostgreSQL in its own directory on a free port (as the
#     postgres user when run as root);
#   * the embedded search engine served over HTTP (walsearch eslite), the
#     Elasticsearch endpoint every process shares;
#   * two capture processes (a leader and a standby), two transform,sink
#     workers sharing the two partitions of the streams (nats.partitions),
#     and an API.
#
# It writes rows, finds them through the API, kills the capture leader
# (SIGKILL), shows the standby take over and the rows written meanwhile
# arrive, kills a worker and shows the other take its partition, then
# stops everything it started and removes its directory (also on an error
# or Ctrl-C).
#
# Usage: examples/scale-out/run.sh   (from anywhere in the repository)
# Environment: WALSEARCH_BIN, NATS_SERVER_BIN use those binaries instead of
# building them; KEEP_RUNNING=1 waits for Ctrl-C before tearing down.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/walsearch-scale-out.XXXXXX")
pids=()        # every process this script started, stopped at the end
pg_data=""     # the PostgreSQL data directory, once it runs
as_postgres=() # how postgres commands run: as the postgres user under root

say() { printf '\n== %s\n' "$*"; }

teardown() {
	local status=$?
	trap - EXIT INT TERM
	if ((status != 0)); then
		local log
		for log in "$work"/*.log; do
			[[ -f $log ]] && printf '\n-- %s (last lines)\n' "${log##*/}" && tail -n 15 "$log"
		done
	fi
	say "tearing down"
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $pg_data && -f $pg_data/postmaster.pid ]]; then
		"${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null || true
	fi
	rm -rf "$work"
	echo "stopped ${#pids[@]} processes and PostgreSQL; removed $work"
	exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a 127.0.0.1 port nothing listens on and this script has
# not handed out yet.
used_ports=" "
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ $used_ports == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			used_ports+="$p "
			echo "$p"
			return
		fi
	done
}

# wait_for runs a command until it succeeds, for at most $1 seconds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			echo "$what: not within ${secs}s" >&2
			return 1
		fi
		sleep 0.2
	done
}

start() { # start NAME COMMAND...: runs it in the background, output in $work/NAME.log
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	echo "started $name: pid $!"
}

# --- binaries ---------------------------------------------------------------
mkdir -p "$work/bin"
wsbin=${WALSEARCH_BIN:-}
if [[ -z $wsbin ]]; then
	say "building walsearch"
	(cd "$repo" && go build -o "$work/bin/walsearch" ./cmd/walsearch)
	wsbin=$work/bin/walsearch
fi
natsbin=${NATS_SERVER_BIN:-}
if [[ -z $natsbin ]]; then
	want=$(awk '$1 == "github.com/nats-io/nats-server/v2" { sub(/^v/, "", $2); print $2 }' "$repo/go.mod")
	have=""
	if command -v nats-server >/dev/null; then
		have=$(nats-server --version | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p')
	fi
	if [[ -n $have && $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1) == "$want" ]]; then
		natsbin=$(command -v nats-server)
	else
		say "building nats-server $want (the version go.mod requires${have:+; the one on PATH is $have})"
		(cd "$repo" && go build -o "$work/bin/nats-server" github.com/nats-io/nats-server/v2)
		natsbin=$work/bin/nats-server
	fi
fi

# --- NATS: three servers, one cluster ---------------------------------------
say "starting a three-node NATS cluster"
client_ports=() route_ports=() routes=() nats_pids=()
for i in 0 1 2; do
	client_ports+=("$(free_port)")
	route_ports+=("$(free_port)")
	routes+=("nats-route://127.0.0.1:${route_ports[i]}")
done
nats_urls=()
for i in 0 1 2; do
	mkdir -p "$work/nats$i"
	cat >"$work/nats$i/nats.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${client_ports[i]}
jetstream { store_dir: "$work/nats$i/js" }
cluster { name: walsearch-example, listen: 127.0.0.1:${route_ports[i]}, routes: [$(IFS=,; echo "${routes[*]}")] }
EOF
	start "nats$i" "$natsbin" -c "$work/nats$i/nats.conf"
	nats_pids+=("${pids[-1]}")
	nats_urls+=("nats://127.0.0.1:${client_ports[i]}")
done
nats_url=$(IFS=,; echo "${nats_urls[*]}")
# A new cluster elects its JetStream leader only once every server in the
# routes is up: a server that exits or hangs on start is named here rather
# than as a missing leader later.
listening() { # listening PORT PID
	kill -0 "$2" 2>/dev/null || { echo "pid $2 exited" >&2; return 1; }
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for i in 0 1 2; do
	wait_for 60 "nats$i (pid ${nats_pids[i]}) listening on 127.0.0.1:${client_ports[i]}" \
		listening "${client_ports[i]}" "${nats_pids[i]}"
done

# --- PostgreSQL ---------------------------------------------------------------
say "starting PostgreSQL"
pg_bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
mkdir -p "$work/pg"
if ((EUID == 0)); then
	chmod o+x "$work" # for the postgres user to reach its directory
	chown postgres: "$work/pg"
	as_postgres=(runuser -u postgres --)
fi
pg_port=$(free_port)
"${as_postgres[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync >"$work/initdb.log"
cat >>"$work/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = ''
wal_level = logical
EOF
pg_data=$work/pg/data
"${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/postgres.log" -w start >/dev/null
pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
psql -q -X -v ON_ERROR_STOP=1 "$pg_url" -c \
	"CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL, price numeric NOT NULL);
	 INSERT INTO products VALUES (1, 'desk lamp', 39.90), (2, 'reading lamp', 24.50), (3, 'office chair', 189.00);"
echo "PostgreSQL on 127.0.0.1:$pg_port, table products with 3 rows"

# --- the search engine ----------------------------------------------------------
es_port=$(free_port)
start eslite "$wsbin" eslite --listen "127.0.0.1:$es_port" --data "$work/eslite"
wait_for 30 "eslite on 127.0.0.1:$es_port" curl -s -o /dev/null "http://127.0.0.1:$es_port/"

# --- walsearch, one process per role -----------------------------------------------
api_port=$(free_port)
cat >"$work/walsearch.yaml" <<EOF
postgres:
  url: $pg_url
elasticsearch:
  url: http://127.0.0.1:$es_port
nats:
  url: $nats_url
  partitions: 2
capture:
  lease_ttl: 3s
api:
  listen: 127.0.0.1:$api_port
EOF
say "starting walsearch: two captures, two transform,sink workers and an API"
capture_pids=()
worker_pids=()
for name in capture1 capture2 worker1 worker2 api; do
	role=${name%[0-9]}
	[[ $role == worker ]] && role=transform,sink
	mkdir -p "$work/$name"
	# Every process serves HTTP on api.listen: the API, or the health and
	# metrics endpoints of the others, each on a port of its own.
	listen=127.0.0.1:$api_port
	[[ $role != api ]] && listen=127.0.0.1:$(free_port)
	start "$name" "$wsbin" run --config "$work/walsearch.yaml" --role "$role" --data-dir "$work/$name" --api-listen "$listen"
	[[ $role == capture ]] && capture_pids+=("${pids[-1]}")
	[[ $role == transform,sink ]] && worker_pids+=("${pids[-1]}")
done
api=http://127.0.0.1:$api_port

# leader_pid prints the process id of the capture leader as /status shows it.
leader_pid() {
	curl -sf "$api/status" | grep -o '"holder":"[^"]*"' | head -n1 | cut -d/ -f2
}
# search_total prints how many products match $1.
search_total() {
	curl -sf "$api/search" -H 'Content-Type: application/json' \
		-d "{\"index\":\"products\",\"q\":\"$1\",\"page_size\":1}" |
		grep -o '"total_records":[0-9]*' | cut -d: -f2
}
found() { [[ $(search_total "$1") == "$2" ]]; }
has_leader() { [[ -n $(leader_pid) ]]; }

wait_for 120 "a capture leader in $api/status" has_leader
leader=$(leader_pid)
echo "capture leader: pid $leader (the other capture stands by)"
curl -sf "$api/status" | grep -o '"leader":{[^}]*}'

say "searching for 'lamp'"
wait_for 60 "both lamps searchable" found lamp 2
curl -sf "$api/search" -H 'Content-Type: application/json' -d '{"index":"products","q":"lamp","fields":["id","name","price"]}'
echo

say "killing the capture leader (pid $leader, SIGKILL)"
case " ${capture_pids[*]} " in
*" $leader "*) kill -KILL "$leader" && { wait "$leader" 2>/dev/null || true; } ;;
*) echo "pid $leader is not a capture this script started" >&2 && exit 1 ;;
esac
killed_at=$SECONDS
psql -q -X -v ON_ERROR_STOP=1 "$pg_url" -c "INSERT INTO products VALUES (4, 'floor lamp', 79.00), (5, 'lamp shade', 12.00)"
echo "wrote 2 more lamps while no capture leads"
new_leader_elected() { local p; p=$(leader_pid) && [[ -n $p && $p != "$leader" ]]; }
wait_for 60 "the standby taking over" new_leader_elected
echo "the standby (pid $(leader_pid)) leads now, $((SECONDS - killed_at))s after the kill"
curl -sf "$api/status" | grep -o '"leader":{[^}]*}'
wait_for 60 "the rows written meanwhile searchable" found lamp 4
echo "search for 'lamp' finds $(search_total lamp) products"

# partition_holders prints the process id holding each partition, in order.
partition_holders() {
	curl -sf "$api/status" | grep -o '"holders":{"transform_sink":"[^"]*"}' | cut -d/ -f2 | tr '\n' ' '
}
# held_by_both is true once each worker holds a partition.
held_by_both() {
	local h
	h=$(partition_holders)
	[[ $h == *"${worker_pids[0]}"* && $h == *"${worker_pids[1]}"* ]]
}
wait_for 60 "each worker holding a partition" held_by_both
echo "partitions held by pids: $(partition_holders)"

victim=${worker_pids[0]}
say "killing a worker (pid $victim, SIGKILL)"
kill -KILL "$victim" && { wait "$victim" 2>/dev/null || true; }
killed_at=$SECONDS
psql -q -X -v ON_ERROR_STOP=1 "$pg_url" -c "INSERT INTO products VALUES (6, 'lamp bulb', 4.50), (7, 'lamp cable', 6.00)"
held_by_survivor() { [[ $(partition_holders) == "${worker_pids[1]} ${worker_pids[1]} " ]]; }
wait_for 60 "the other worker taking the killed one's partition" held_by_survivor
echo "the other worker (pid ${worker_pids[1]}) holds both partitions, $((SECONDS - killed_at))s after the kill"
wait_for 60 "the rows written meanwhile searchable" found lamp 6
echo "search for 'lamp' finds $(search_total lamp) products"

if [[ ${KEEP_RUNNING:-} == 1 ]]; then
	say "running; API on $api, Ctrl-C to stop"
	while :; do sleep 3600; done
fi
say "done"
