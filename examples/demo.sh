#!/usr/bin/env bash
# The seed article's docker0 scenario, end to end, inside a throwaway sandbox (new network and mount
# namespaces with a private /run/netns): compile, build (with a web server in each nginx), verify, ping and curl
# as the article does, then remove the lab. The machine's own network is never touched. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} != --inside ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  echo "\$ netgen compile examples/docker0.py -o $out"
  netgen compile examples/docker0.py -o "$out"
  echo "\$ head -n 12 $out/up.sh"
  head -n 12 "$out/up.sh"
  echo "# entering a sandbox: unshare --net --mount --propagation private"
  unshare --net --mount --propagation private "$0" --inside "$out"
  exit
fi

out=$2
# a private /run: its netns folder and the scripts' own /run/netgen vanish with the sandbox (-n: and mount makes no
# /run/mount in the machine's /run, where it would record mounts)
mount -n -t tmpfs netgen-demo /run
mkdir -p /run/netns
step() {
  printf '\n$ %s\n' "$*"
  "$@"
}
step bash "$out/up.sh" # it starts the lab's services: a web server in each nginx, standing in for nginx
step bash "$out/verify.sh"
step ip netns exec nginx-2 ping -c 2 172.17.0.2
step ip netns exec nginx-2 curl -s http://172.17.0.2/
step ping -c 1 172.17.0.2
step ip -n nginx-1 -br addr show eth0
step ip -br link show master docker0
step bash "$out/down.sh"
step ip netns list
echo
echo "# the sandbox ends here, and with it everything it held"
