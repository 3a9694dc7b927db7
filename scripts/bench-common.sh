# Shared by the scripts/bench-* scripts that compare kiln with its peers (sourced, not run): a local registry,
# the Debian minbase base image, timing with peak memory, and medians. Each caller sets `bench_name` (for
# messages), `run_dir` (its scratch directory) and `data` (where the base's root filesystem is kept between
# invocations) before calling these.

log() { echo "$bench_name: $*" >&2; }

# Starts Debian's docker-registry on a free port of 127.0.0.1, storing under $run_dir/registry; sets
# `registry` (host:port) and `registry_pid`.
start_registry() {
  local port registry_binary=/usr/bin/docker-registry
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if [[ -n $(ss -Htln "sport = :$port") ]]; then continue; fi
    mkdir -p "$run_dir/registry"
    cat >"$run_dir/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $run_dir/registry/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: kiln-$bench_name-secret
EOF
    env -i PATH=/usr/bin:/bin HOME="$run_dir/registry" "$registry_binary" serve "$run_dir/registry/config.yml" \
      >"$run_dir/registry/registry.log" 2>&1 &
    registry_pid=$!
    registry=127.0.0.1:$port
    for _ in $(seq 100); do
      if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$registry/v2/" || true) == 200 ]]; then return 0; fi
      kill -0 "$registry_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; registry_pid=""
  done
  log "could not start a registry"; exit 1
}

stop_registry() {
  if [[ -n ${registry_pid:-} ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  registry_pid=""
}

# Pushes Debian bookworm minbase (debootstrap, made once and kept in $data) to $registry/base/debian:bookworm
# with `$1` (the kiln binary); sets `base`.
push_debian_base() {
  local kiln=$1 rootfs_tar=$data/debian-bookworm-minbase.tar
  if [[ ! -f $rootfs_tar ]]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
    log "making the Debian base with debootstrap (once; about 2 minutes)"
    mkdir -p "$data"
    debootstrap --variant=minbase bookworm "$run_dir/debian" >"$run_dir/debootstrap.log" 2>&1 \
      || { tail -20 "$run_dir/debootstrap.log" >&2; exit 1; }
    tar -C "$run_dir/debian" --numeric-owner -cf "$rootfs_tar.tmp" .
    mv "$rootfs_tar.tmp" "$rootfs_tar"
    rm -rf --one-file-system "$run_dir/debian"
  fi
  mkdir -p "$run_dir/base"
  ln "$rootfs_tar" "$run_dir/base/rootfs.tar" 2>/dev/null || cp "$rootfs_tar" "$run_dir/base/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$run_dir/base/Dockerfile"
  base=$registry/base/debian:bookworm
  log "pushing the base to $base"
  "$kiln" build --context "$run_dir/base" --destination "$base" --insecure --work-dir "$run_dir" >"$run_dir/base.log" 2>&1 \
    || { tail -20 "$run_dir/base.log" >&2; exit 1; }
}

# A memory cgroup of this script's own (v1's memory controller, or v2), in which timed builds run, so that their
# peak memory counts every process and every tmpfs they fill (page cache too). Sets `memory_cgroup` ("" when
# none can be made: the peak is then left out).
memory_cgroup=""
make_memory_cgroup() {
  local line path
  while IFS= read -r line; do
    path=${line#*:*:}
    case $line in
      *:memory:*|*:*,memory:*|*:memory,*:*) memory_cgroup=/sys/fs/cgroup/memory${path%/}/kiln-$bench_name-$$; break ;;
      0::*) [[ -f /sys/fs/cgroup/cgroup.controllers ]] && memory_cgroup=/sys/fs/cgroup${path%/}/kiln-$bench_name-$$ ;;
    esac
  done </proc/self/cgroup
  if [[ -z $memory_cgroup ]] || ! mkdir -p "$memory_cgroup" 2>/dev/null; then memory_cgroup=""; return 0; fi
}
remove_memory_cgroup() { [[ -n $memory_cgroup ]] && rmdir "$memory_cgroup" 2>/dev/null; return 0; }

# timed LOG CMD...: runs CMD (output to LOG) in the memory cgroup; prints "SECONDS MAXRSS_MB PEAK_MB", where
# MAXRSS is the largest single process's and PEAK the whole cgroup's ("-" without one). Fails as CMD does.
timed() {
  local out=$1; shift
  local peak="-" start end rc=0
  if [[ -n $memory_cgroup ]]; then
    # Only the builds' own pages count: what earlier builds left in the page cache is dropped first.
    { echo 0 >"$memory_cgroup/memory.max_usage_in_bytes"; } 2>/dev/null || true
    { echo 1 >"$memory_cgroup/memory.force_empty"; } 2>/dev/null || true
    { echo reset >"$memory_cgroup/memory.peak"; } 2>/dev/null || true
  fi
  start=$(date +%s.%N)
  if [[ -n $memory_cgroup ]]; then
    /usr/bin/time -f '%M' -o "$out.rss" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$memory_cgroup" "$@" >"$out" 2>&1 || rc=$?
  else
    /usr/bin/time -f '%M' -o "$out.rss" "$@" >"$out" 2>&1 || rc=$?
  fi
  end=$(date +%s.%N)
  if [[ -n $memory_cgroup ]]; then
    if [[ -f $memory_cgroup/memory.max_usage_in_bytes ]]; then peak=$(cat "$memory_cgroup/memory.max_usage_in_bytes")
    elif [[ -f $memory_cgroup/memory.peak ]]; then peak=$(cat "$memory_cgroup/memory.peak"); fi
    [[ $peak != "-" ]] && peak=$((peak / 1048576))
  fi
  local rss; rss=$(tail -1 "$out.rss" 2>/dev/null | tr -dc 0-9)
  [[ $rc == 0 ]] || return $rc
  awk -v a="$start" -v b="$end" -v r="${rss:-0}" -v p="$peak" 'BEGIN { printf "%.2f %d %s\n", b - a, r / 1024, p }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# "median s (min–max)" of the numbers on stdin, or "-".
median_range() {
  local values; values=$(cat)
  [[ -z $values ]] && { echo "-"; return; }
  echo "$(echo "$values" | median) s ($(echo "$values" | sort -n | head -1)–$(echo "$values" | sort -n | tail -1))"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
