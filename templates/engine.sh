# ===== netgen engine ============================================================================================
# Everything from the line above to the end of the file is netgen's engine: one text, byte for byte the same in
# up.sh, down.sh and verify.sh of every lab this version of netgen compiles (the header names its sha256; `netgen
# engine` prints it, `netgen audit DIR` checks it). Review it once per release; what is above it is the lab's part,
# plain data, and the only text that differs between labs.
#
# What it reads from the lab's part: LAB and SCRIPT (which of the three scripts this is); NAMESPACES, the lab's
# namespaces, in order; EXTERNAL_NS, those that exist before up and stay after down; SYSCTL_KEYS, the sysctls the
# lab sets, per namespace; FDB_NS, the namespaces where it sets bridge forwarding entries; NFT_TABLE (empty without NAT), NFT_CHAINS and NFT_RULES, the lab's nftables table; and,
# by script: up.sh lab_steps (what to make, in order), the ADOPT_* lists and lab_services; down.sh lab_teardown
# (what to remove); verify.sh lab_checks, lab_absent_checks and lab_services.
#
# Sections, in the order things happen: helpers; the state directory (record, lock, scratch files); reading the
# live state; the nftables table; the log; the record; shared host sysctls; services; checks; then each script's
# own: up.sh (steps, batches, rollback, signals), down.sh (removal), verify.sh (expectations); last, the line that
# runs the script named by SCRIPT. The small programs it runs (awk readers and judge, sh loops run by xargs) are
# each held in a variable with a comment above it, written to the run's scratch directory and run from there.
#
# The C locale: tools started for each namespace (nsenter among them) would otherwise open the locale's files each
# time (26 for C.UTF-8 on Debian 12: half a millisecond); and awk and bash compare bytes, whatever the locale.
export LC_ALL=C

# --- helpers ----------------------------------------------------------------------------------------------------

say() { printf '%s: %s\n' "$SCRIPT" "$*"; }
die() {
  local code=$1
  shift
  printf '%s: %s\n' "$SCRIPT" "$*" >&2
  exit "$code"
}
# n_words N WORD [PLURAL] sets N_WORDS to "1 WORD" or "N PLURAL" (default WORDs); no subshell.
n_words() { if (($1 == 1)); then N_WORDS="1 $2"; else N_WORDS="$1 ${3:-$2s}"; fi; }

preflight() {
  local why="it changes network namespaces and links"
  if [[ $SCRIPT == verify.sh ]]; then why="it enters network namespaces to read them"; fi
  ((EUID == 0)) || die 2 "must run as root ($why); try: sudo bash $0"
  command -v ip >/dev/null || die 2 "the ip command (iproute2) is not installed"
  command -v awk >/dev/null || die 2 "awk is not installed (it reads what ip prints)"
  command -v flock >/dev/null || die 2 "flock (util-linux) is not installed (it keeps two runs of the lab apart)"
  command -v setsid >/dev/null || die 2 "setsid (util-linux) is not installed (it runs the batches apart from signals)"
  if [[ -n $NFT_TABLE && $SCRIPT != down.sh ]] && ! command -v nft >/dev/null; then
    die 2 "the nft command (nftables) is not installed, and this lab has NAT rules; install it first (apt-get install nftables)"
  fi
  if command -v nsenter >/dev/null; then NSENTER=1; fi
  if [[ $SCRIPT == up.sh ]]; then services_installed; fi
  state_dir
}

# --- the state directory: the lab's record, its lock, its scratch files -----------------------------------------
# One directory that only root can write (NETGEN_STATE_DIR, default /run/netgen, a tmpfs; made with mode 0700) holds what this lab made
# (LAB.made), its lock (LAB.lock), the host sysctls labs changed (sysctl/) and each run's scratch directory. Nothing
# another user can make in /run/lock, /run or /tmp is ever read, locked or written by a script.
STATE_DIR=${NETGEN_STATE_DIR:-/run/netgen}
state_dir() {
  local owner mode
  if [[ ! -e $STATE_DIR && ! -L $STATE_DIR ]]; then
    (umask 077 && mkdir -p -- "$STATE_DIR") || die 2 "cannot make the state directory $STATE_DIR"
  fi
  if [[ -L $STATE_DIR || ! -d $STATE_DIR ]]; then
    die 2 "the state directory $STATE_DIR is not a directory (or is a symbolic link): refused"
  fi
  read -r owner mode < <(stat -c '%u %a' -- "$STATE_DIR")
  if ((owner != 0 || (8#$mode & 8#022) != 0)); then
    die 2 "the state directory $STATE_DIR must belong to root and be writable by root alone (it is uid $owner, mode $mode): refused; remove it, or set NETGEN_STATE_DIR"
  fi
}

# lock [shared]: the lab's lock, an flock on STATE_DIR/LAB.lock, waited for NETGEN_LOCK_WAIT seconds (default 10).
# The kernel lets go of it when this script and everything it started have ended, so a dead run never keeps it
# and no run ever takes it over. up and down hold it alone; verify shares it with other verifies, so that it never
# reads a lab that up or down is changing.
LOCK_FD=
lock() {
  local wait=${NETGEN_LOCK_WAIT:-10} how=-x holder=
  [[ $wait =~ ^[0-9]+$ ]] || die 2 "NETGEN_LOCK_WAIT must be a number of seconds, not '$wait'"
  if [[ ${1:-} == shared ]]; then how=-s; fi
  exec {LOCK_FD}>>"$STATE_DIR/$LAB.lock"
  if ! flock "$how" -w "$wait" "$LOCK_FD"; then
    read -r holder <"$STATE_DIR/$LAB.lock" || true
    [[ $holder =~ ^pid\ [0-9]+,\ [a-z]+\.sh$ ]] || holder=
    die 2 "lab $LAB is in use by another run (last taken by ${holder:-?}); try again when it has finished"
  fi
  if [[ $how == -x ]]; then printf 'pid %s, %s\n' "$$" "$SCRIPT" 2>/dev/null >"$STATE_DIR/$LAB.lock" || true; fi
}

# scratch makes this run's scratch directory (ip's batches and readings) in the state directory. Under the lab's
# lock held alone, every other scratch directory of the lab is a dead run's (killed before it could clean up), and
# is removed first.
TMP=
scratch() {
  local old
  if [[ ${1:-} == sweep ]]; then
    for old in "$STATE_DIR/run.$LAB".*; do
      if [[ -d $old ]]; then rm -rf -- "$old"; fi
    done
  fi
  TMP=$(mktemp -d -p "$STATE_DIR" "run.$LAB.XXXXXXXX") || die 2 "cannot make a scratch directory in $STATE_DIR"
  TMP_ID=$(stat -c '%d:%i' -- "$TMP")
}

# cleanup, on exit: background work (a batch, a reader) may still write to the scratch directory, so it is waited
# for before the directory goes.
cleanup() {
  wait || true
  quiet_scratch
  if [[ -n $TMP ]]; then rm -rf -- "$TMP"; fi
}

# quiet_scratch waits until no process works in the scratch directory any more: every batch and reader runs
# there, and one whose parent loop was ended by a signal may still be running (up to NETGEN_STRAGGLER_WAIT seconds,
# default 10; then it is killed). Undo and cleanup come after it, never beside it. A process counts when its working
# directory is this very directory (device and inode: only root can enter it), not one elsewhere of that name.
TMP_ID=
quiet_scratch() {
  local deadline=$((SECONDS + ${NETGEN_STRAGGLER_WAIT:-10})) id path
  local -a pids
  if [[ -z $TMP ]]; then return 0; fi
  while :; do
    pids=()
    while read -r id path; do
      if [[ $id == "$TMP_ID" ]]; then path=${path#/proc/} pids+=("${path%%/*}"); fi
    done < <(stat -L -c '%d:%i %n' /proc/[0-9]*/cwd 2>/dev/null)
    if ((${#pids[@]} == 0)); then return 0; fi
    if ((SECONDS >= deadline)); then
      kill -KILL "${pids[@]}" 2>/dev/null || true
      return 0
    fi
    sleep 0.05
  done
}

# in_ns NS COMMAND...: COMMAND inside namespace NS (host: here). nsenter (util-linux) only switches the network
# namespace; `ip -n` and `ip netns exec` also copy the mount table, which holds one mount per named namespace,
# so each call slows as labs grow (about 2x per call at 500 namespaces). They are the fallback without nsenter.
NSENTER=
in_ns() {
  local ns=$1
  shift
  if [[ $ns == host ]]; then
    "$@"
  elif [[ -n $NSENTER ]]; then
    nsenter --net="/run/netns/$ns" "$@"
  else
    ip netns exec "$ns" "$@"
  fi
}

# --- the live state ---------------------------------------------------------------------------------------------
# The live state goes into HAVE under keys ATTR/NS/OBJECT, for example HAVE[link/ns1/veth0]=veth. Each namespace
# (host: the root namespace) is read by one ip process as JSON, which the awk program below turns into KEY<tab>VALUE
# lines (bash takes seconds to pick a thousand links apart, awk milliseconds). up.sh and down.sh read them into HAVE
# as data; nothing read from the host is ever sourced or evaluated. verify.sh sets FACTS: there the lines stay in one
# file, which another awk program compares with the lab (judge), and bash never loads them. Naming the namespace of a veth's peer means looking at every file in /run/netns (ip's
# text form does it in every process), so only the host's reading lists the namespaces by id and gives its peers
# names; elsewhere a peer in another namespace reads "unnamed" (see `peer` in verify.sh's judge), and
# cross/IFINDEX/IFLINK counts the veth ends between namespaces, to tell whether a pair is the only one alike.
# ip's strings (names, aliases, namespaces' names) may hold any byte but NUL, `{` among them: a record cut at a `{`
# inside a string waits for the rest. A string that ip escaped (`\"`, `\\`, `\t`...) comes out as ip wrote it, with
# `\u0022` for `\"`: a name that no lab object has (lab names have no `\`) and no other string gets. Every other
# string is read as it is.
declare -A HAVE=()
FACTS=
# shellcheck disable=SC2016 # expanded by awk
PARSE_AWK='BEGIN { RS = "{"; FS = "\""; Q = "\047" }
function put(key, value) { print key "\t" value }
FNR == 1 { put("netns/" ns "/", "present"); delete nsid; name = ""; cut = "" }
cut != "" { $0 = cut "{" $0; cut = "" }
index($0, "\\") { # fields are cut at quotes: text and strings in turn (a quote after an odd number of \ is in one)
  out = $1
  inside = 0
  for (i = 2; i <= NF; i++) {
    if (!inside) {
      inside = 1
      s = $i
    } else if (match($(i - 1), /\\+$/) && RLENGTH % 2) s = s "u0022" $i
    else {
      out = out "\"" s "\"" $i
      inside = 0
    }
  }
  if (inside) cut = $0
  else $0 = out
}
# a record that ends with a key and : or :[ is whole (a quote after a letter closes a key), others must have an even
# number of quotes (counting them is the costly part of reading)
cut == "" && substr($0, length($0) - 3) !~ /[a-z_]":\[?$/ && NF % 2 == 0 { cut = $0 }
cut != "" { next }
function after(key, rec, stop) { # the text after key in rec, up to the first character in stop
  if (!match(rec, key)) return ""
  rec = substr(rec, RSTART + RLENGTH)
  return match(rec, "[" stop "]") ? substr(rec, 1, RSTART - 1) : rec
}
/^"ifindex":/ {
  vx = ""
  index_ = after("^\"ifindex\":", $0, ",")
  rest = substr($0, length(index_) + 12)
  if (rest ~ /^"link":"/) link = after("^\"link\":\"", rest, "\"")
  else if (rest ~ /^"link_index":/) link = after("^\"link_index\":", rest, ",")
  else link = ""
  name = after(",?\"ifname\":\"", rest, "\"")
  key = ns "/" name
  flags = after("\"flags\":\\[", $0, "]")
  put("ifindex/" key, index_)
  put("group/" key, after("\"group\":\"", $0, "\""))
  put("iflink/" key, link)
  put("mtu/" key, after("\\],\"mtu\":", $0, ",}"))
  put("state/" key, (flags ~ /"UP"/ ? "up" : "down"))
  put("oper/" key, (flags ~ /"LOWER_UP"/ ? "up" : "down"))
  put("master/" key, ($0 ~ /"master":"/ ? after("\"master\":\"", $0, "\"") : "none"))
  kind = "device"
  if ($0 ~ /"link_type":"[a-z]+","address":"/) {
    put("mac/" key, after("\"link_type\":\"[a-z]+\",\"address\":\"", $0, "\""))
    if ($0 ~ /"link_type":"loopback"/) kind = "loopback"
  }
  put("link/" key, kind)
  peer = ns
  if ($0 ~ /"link_netnsid":[0-9]/) {
    id = after("\"link_netnsid\":", $0, ",}")
    peer = (id in nsid) ? nsid[id] : "unnamed"
    if (!naming) print "count\tcross/" index_ "/" link
  }
  put("peerns/" key, peer)
  next
}
/^"state":"/ { # the settings of a bridge port
  if ($0 ~ /"hairpin":true/) put("hairpin/" ns "/" name, "on")
  else if ($0 ~ /"hairpin":false/) put("hairpin/" ns "/" name, "off")
  next
}
/^"info_kind":"/ {
  kind = after("^\"info_kind\":\"", $0, "\"")
  put("link/" ns "/" name, kind)
  vx = (kind == "vxlan") ? ns "/" name : ""
  next
}
vx != "" && /^"id":[0-9]/ { # a vxlan: its VNI, local address and underlay device, then (maybe in a later record) its port
  vxlan = "id " after("^\"id\":", $0, ",}") " local " ($0 ~ /"local":"/ ? after("\"local\":\"", $0, "\"") : "none")
  vxlan = vxlan " dev " ($0 ~ /"link":"/ ? after("\"link\":\"", $0, "\"") : "none")
}
vx != "" && /"port":[0-9]/ {
  put("vxlan/" vx, vxlan " dstport " after("\"port\":", $0, ",}") ($0 ~ /"learning":false/ ? " nolearning" : " learning"))
  vx = ""
  next
}
/^"dst":"[^"]+","dev":"[^"]+","lladdr":"/ { # a permanent neighbour entry: neigh/NS/DEV/ADDRESS
  put("neigh/" ns "/" after(",\"dev\":\"", $0, "\"") "/" after("^\"dst\":\"", $0, "\""), "lladdr " \
    after("\"lladdr\":\"", $0, "\"") " nud " tolower(after("\"state\":\\[\"", $0, "\"")))
  next
}
/^"mac":"[^"]+","ifname":"[^"]+","dst":"/ { # a forwarding entry to a remote address: fdb/NS/DEV/MAC/DST, its flags and state
  flags = after("\"flags\":\\[", $0, "]")
  gsub(/[",]+/, " ", flags)
  gsub(/^ +| +$/, "", flags)
  put("fdb/" ns "/" after(",\"ifname\":\"", $0, "\"") "/" after("^\"mac\":\"", $0, "\"") "/" after(",\"dst\":\"", $0, "\""),
    (flags == "" ? "" : flags " ") after("\"state\":\"", $0, "\""))
  next
}
/^"family":/ {
  if ($0 !~ /"local":"[^"]+","prefixlen":[0-9]/) next
  have = name
  if ($0 ~ /"tentative":true/) have = have " (tentative)"
  else if ($0 ~ /"dadfailed":true/) have = have " (dadfailed)"
  put("addr/" ns "/" after("\"local\":\"", $0, "\"") "/" after("\"prefixlen\":", $0, ",}"), have)
  next
}
/^"type":/ {
  if ($0 !~ /"table":"main"/ || $0 !~ /"dst":"[^"]+"(,"gateway":"[^"]+")?,"dev":"[^"]+"/) next
  via = ($0 ~ /"dst":"[^"]+","gateway":"/) ? "via " after("\"gateway\":\"", $0, "\"") " " : ""
  key = ns "/" after("\"dst\":\"", $0, "\"")
  put(($0 ~ /"pref":/ ? "route6/" : "route4/") key, via "dev " after(",\"dev\":\"", $0, "\""))
  if ($0 ~ /"protocol":"/) put("proto/" key, after("\"protocol\":\"", $0, "\""))
  next
}
/^"name":"[^"]+","id":[0-9]/ { # a named namespace and its id in this one
  id = after("\"id\":", $0, ",}")
  nsid[id] = after("^\"name\":\"", $0, "\"")
  put("nsid/" nsid[id] "/", id)
}'

# What ip reads in each namespace: links with their addresses, routes and permanent neighbour entries (down.sh
# reads the host's links and routes only); in the namespaces of FDB_NS, `bridge` reads the forwarding entries too.
READING=$'addr show\nroute show table all\nneigh show nud permanent'
if [[ $SCRIPT == down.sh ]]; then READING=$'link show\nroute show table all'; fi
NAMED_READING=$'netns list\n'"$READING" # the host also lists the namespaces by id, to name the peers of its veths

# parse NS FILE... [naming] records ip's JSON readings of namespaces NS (naming: read again to name its peers).
parse() {
  local naming=${*: -1}
  local -a operands=()
  if [[ $naming == naming ]]; then set -- "${@:1:$#-1}"; else naming=; fi
  while (($#)); do
    operands+=("ns=$1" "$2")
    shift 2
  done
  if [[ -n $FACTS ]]; then # verify.sh: the lines stay in a file, for judge, which compares them with the lab
    awk -v naming="$naming" "$PARSE_AWK" "${operands[@]}" >>"$TMP/facts"
    return 0
  fi
  # up.sh and down.sh load them into HAVE as data: nothing read from the host is ever run as code (mapfile and a
  # split by parameter expansion: `read` takes a byte at a time from a pipe, 0.1 s for a 500-namespace host)
  local line tab=$'\t'
  local -a lines
  mapfile -t lines < <(awk -v naming="$naming" "$PARSE_AWK" "${operands[@]}")
  for line in "${lines[@]}"; do
    if [[ $line == count"$tab"* ]]; then count "${line#*"$tab"}"; else HAVE[${line%%"$tab"*}]=${line#*"$tab"}; fi
  done
}

# count KEY: one more of KEY in HAVE (parsed readings count the veth ends between namespaces).
count() { HAVE[$1]=$((${HAVE[$1]:-0} + 1)); }

# netns_ids NS... sets NETNS_ID[NS] to the device:inode of each NS whose /run/netns file is a live namespace: two
# stat processes for all of them (one per namespace cost 2 s at 500 namespaces).
declare -A NETNS_ID=()
netns_ids() {
  local ns line path
  local -a files=() lines
  NETNS_ID=()
  for ns; do
    if [[ -e /run/netns/$ns ]]; then files+=("/run/netns/$ns"); fi
  done
  if ((${#files[@]} == 0)); then return 0; fi
  # mapfile, not `while read`: read takes a pipe a byte at a time (0.1 s for these lines at 500 namespaces)
  mapfile -t lines < <(stat -f -c '%n %T' -- "${files[@]}" 2>/dev/null)
  for line in "${lines[@]}"; do
    if [[ $line == *" nsfs" ]]; then path=${line% *} && NETNS_ID[${path#/run/netns/}]=; fi
  done
  mapfile -t lines < <(stat -L -c '%n %d:%i' -- "${files[@]}" 2>/dev/null)
  for line in "${lines[@]}"; do
    path=${line% *} path=${path#/run/netns/}
    if [[ -n ${NETNS_ID[$path]+set} ]]; then NETNS_ID[$path]=${line##* }; fi
  done
}

# deal N ARRAY: the items of the array named ARRAY in N lines, one per loop that xargs runs, dealt round-robin so
# that each loop gets as many of the costly ones.
deal() {
  local n=$1 i j line
  local -n items=$2
  for ((i = 0; i < n; i++)); do
    line=
    for ((j = i; j < ${#items[@]}; j += n)); do line+=" ${items[j]}"; done
    if [[ -n $line ]]; then printf '%s\n' "${line# }"; fi
  done
}

# read_namespaces NS... reads the live state of each NS that exists (host: the root namespace) into HAVE. The
# namespaces are dealt out to NETGEN_JOBS (default 4) small sh loops (below), which xargs runs side by side. Each
# reads a namespace with one `ip -j -d -batch` inside it (nsenter, or `ip netns exec` without it: no shell in
# between, as starting one costs as much as ip itself), and the sysctls the lab sets there with a small sh, then
# says on a pipe which namespace it has read; this script records it while the loops go on. The pipe ends when
# the last loop does, however they end (a signal to the whole process group, say), so the wait for it is bounded.
# A file in /run/netns that is not a live namespace reads as "a stale file"; a live namespace (or the host) that
# cannot be read stops the script before it changes anything (exit 2): it never works blind.
# shellcheck disable=SC2016 # expanded by sh when it reads
OBSERVE_SH='enter=$1
shift
for ns; do
  query=query
  case $ns in +*) ns=${ns#+} query=query.naming ;; esac
  case $enter/$ns in
    */host) in= ;;
    nsenter/*) in="nsenter --net=/run/netns/$ns" ;;
    *) in="ip netns exec $ns" ;;
  esac
  if [ -r "keys.$ns" ]; then
    read -r keys <"keys.$ns" || true # dash returns 1 at a last line without a newline
    $in sh read_sysctls.sh $keys >"sysctl.$ns"
  fi
  $in ip -j -d -batch - <"$query" >"read.$ns" 2>"err.$ns"
  status=$?
  if [ "$status" = 0 ] && [ -e "readfdb.$ns" ]; then
    $in bridge -j fdb show >>"read.$ns" 2>>"err.$ns"
    status=$?
  fi
  echo "$status $ns" >&3
done'
# shellcheck disable=SC2016 # expanded by sh when it reads
READ_SYSCTLS='for key; do
  path=/proc/sys
  IFS=.
  for part in $key; do path=$path/$part; done
  unset IFS
  if [ -r "$path" ]; then
    value=$(cat "$path") # not read: sh reads a byte at a time, and /proc/sys gives a number to one whole read only
    printf "%s=%s\n" "$key" "$value"
  fi
done'
INTERRUPTED= # the signal this run got, while it finishes what it must before it stops
read_namespaces() {
  local ns status key value enter=ip jobs=${NETGEN_JOBS:-4}
  local -a found=() ready=() live=()
  local -A asked=()
  printf '%s\n' "$OBSERVE_SH" >"$TMP/observe.sh"
  printf '%s\n' "$READ_SYSCTLS" >"$TMP/read_sysctls.sh"
  printf '%s\n' "$READING" >"$TMP/query"
  printf '%s\n' "$NAMED_READING" >"$TMP/query.naming"
  if [[ -n $NSENTER ]]; then enter=nsenter; fi
  for ns in "$@"; do
    if [[ $ns != host ]]; then
      if [[ ! -e /run/netns/$ns ]]; then continue; fi
      live+=("$ns")
    fi
    asked[$ns]=1
    if [[ -n ${SYSCTL_KEYS[$ns]:-} ]]; then printf '%s\n' "${SYSCTL_KEYS[$ns]}" >"$TMP/keys.$ns"; fi
    if [[ " ${FDB_NS[*]} " == *" $ns "* ]]; then : >"$TMP/readfdb.$ns"; fi
    if [[ $ns == host ]]; then ns=+$ns; fi
    found+=("$ns")
  done
  # which files are live namespaces, and the device:inode of each (what the record compares)
  if ((${#live[@]})); then
    netns_ids "${live[@]}"
    for ns in "${live[@]}"; do HAVE[netnsid/$ns/]=${NETNS_ID[$ns]:-stale}; done
  fi
  deal "$jobs" found >"$TMP/reads"
  # readings are parsed 32 namespaces at a time, as they come
  while read -r status ns; do
    if [[ $status != end ]]; then
      unset "asked[$ns]"
      if ((status != 0)); then
        if [[ $ns != host && ${HAVE[netnsid/$ns/]:-stale} == stale ]]; then
          HAVE[netns/$ns/]="a stale file in /run/netns"
          continue
        fi
        sed 's/^/  /' "$TMP/err.$ns" >&2
        die 2 "could not read the live state of ${ns/#host/the host} (above); nothing was changed"
      fi
      ready+=("$ns" "$TMP/read.$ns")
      if [[ -n ${SYSCTL_KEYS[$ns]:-} ]]; then
        while IFS='=' read -r key value; do HAVE[sysctl/$ns/$key]=$value; done <"$TMP/sysctl.$ns"
      fi
      if ((${#ready[@]} < 64)); then continue; fi
    fi
    if ((${#ready[@]})); then parse "${ready[@]}"; fi
    ready=()
    if [[ $status == end ]]; then break; fi
  done < <(
    { cd "$TMP" && xargs -P "$jobs" -L 1 -a reads sh observe.sh "$enter" 3>&1 >/dev/null 2>&1; } || true
    echo "end -"
  )
  rm -f "$TMP"/read.* "$TMP"/err.* "$TMP"/sysctl.* "$TMP"/keys.* "$TMP"/readfdb.*
  if [[ -n $INTERRUPTED ]]; then return 0; fi # a signal ended the readers: the caller stops
  if [[ " $* " == *" host "* ]]; then
    for key in ${SYSCTL_KEYS[host]:-}; do
      if [[ -z ${HAVE[sysctl/host/$key]+set} && -e /proc/sys/${key//.//} ]]; then
        die 2 "could not read the host's sysctl $key (is $STATE_DIR full?); nothing was changed"
      elif [[ -z ${HAVE[sysctl/host/$key]+set} ]]; then
        die 2 "the host has no sysctl $key (/proc/sys/${key//.//}); nothing was changed"
      fi
    done
  fi
  for ns in "${!asked[@]}"; do
    if [[ $ns == host || ${HAVE[netnsid/$ns/]:-stale} != stale ]]; then
      die 2 "could not read the live state of ${ns/#host/the host}: its reader ended early; nothing was changed"
    fi
    HAVE[netns/$ns/]="a stale file in /run/netns"
  done
}

# observe reads the live state of the host and of the namespaces in NAMESPACES.
observe() {
  HAVE=()
  if [[ -n $FACTS ]]; then : >"$TMP/facts"; fi
  read_namespaces host "${NAMESPACES[@]}"
  if [[ -n $NFT_TABLE ]]; then read_firewall; fi
}

# --- the lab's nftables table -----------------------------------------------------------------------------------
# The NAT rules of a lab live in one nftables table of its own (family inet: IPv4 and IPv6; NFT_TABLE, empty for a
# lab without them), which down.sh deletes whole, and nothing else. The lab's part writes each rule as `nft list
# table` prints it, so that the listing can be compared with the lab rule by rule. NFT_CHAINS: name and base-chain
# line, its priority a number; NFT_RULES: chain and rule.
declare -A NFT_HAVE=() # CHAIN/RULE: how many times the live table has the rule; CHAIN: its base-chain line
NFT_PRESENT=

# read_firewall reads the lab's table as nft lists it, if it is there. A base chain's standard priority is read as
# its number: nft lists it by name where it knows one for the hook (`priority dstnat`, `srcnat + 5`), and 1.1 knows
# more than 1.0 and 0.9 (the output hook's -100 is `dstnat` there), so the name is what varies; the numbers are
# nft's for the families other than bridge (an inet table is the lab's).
read_firewall() {
  local line chain='' prio
  local -A number=([raw]=-300 [mangle]=-150 [dstnat]=-100 [filter]=0 [security]=50 [srcnat]=100)
  NFT_HAVE=() NFT_PRESENT=
  while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"}
    case $line in
      "table "*) NFT_PRESENT=1 ;;
      "chain "*) chain=${line#chain } chain=${chain% \{} ;;
      "type "*)
        if [[ $line =~ ^(.*\ priority\ )([a-z]+)(\ ([-+])\ ([0-9]+))?(\;.*)$ && -n ${number[${BASH_REMATCH[2]}]:-} ]]; then
          prio=${number[${BASH_REMATCH[2]}]}
          case ${BASH_REMATCH[4]} in +) prio=$((prio + BASH_REMATCH[5])) ;; -) prio=$((prio - BASH_REMATCH[5])) ;; esac
          line=${BASH_REMATCH[1]}$prio${BASH_REMATCH[6]}
        fi
        NFT_HAVE[$chain]=$line
        ;;
      "}" | "") ;;
      *) NFT_HAVE[$chain/$line]=$((${NFT_HAVE[$chain/$line]:-0} + 1)) ;;
    esac
  done < <(nft list table inet "$NFT_TABLE" 2>/dev/null)
}

# firewall_checks: the table is there, with the lab's chains and each of its rules once; a rule the lab does not
# have is named too.
firewall_checks() {
  local i key have where="host/nft $NFT_TABLE"
  local -A mine=()
  have=absent
  if [[ -n $NFT_PRESENT ]]; then have=present; fi
  result "$where table" present "$have" 0
  for ((i = 0; i < ${#NFT_CHAINS[@]}; i += 2)); do
    result "$where chain ${NFT_CHAINS[i]}" "${NFT_CHAINS[i + 1]}" "${NFT_HAVE[${NFT_CHAINS[i]}]:-absent}" 0
  done
  for ((i = 0; i < ${#NFT_RULES[@]}; i += 2)); do
    key=${NFT_RULES[i]}/${NFT_RULES[i + 1]}
    mine[$key]=1
    case ${NFT_HAVE[$key]:-0} in 0) have=absent ;; 1) have=once ;; *) have="${NFT_HAVE[$key]} times" ;; esac
    result "$where ${NFT_RULES[i]} rule [${NFT_RULES[i + 1]}]" once "$have" 0
  done
  for key in "${!NFT_HAVE[@]}"; do
    if [[ $key == */* && -z ${mine[$key]:-} ]]; then result "$where ${key%%/*} rule [${key#*/}]" absent present 0; fi
  done
}

# --- the log, and commands as a person would type them ---------------------------------------------------------
# STATE_DIR/LAB.log: every command up and down ran, one line each: time, script[pid], namespace, the command as
# `--plan` prints it, and how it ended (its exit status; a line of an `ip -batch` after the one ip refused: not
# run). `up.sh --plan` prints the same command text, so a plan and the log that follows it read alike.
PLAN=      # --plan: print what would run, change nothing
PLANNED=() # and what it would run

# typed NS LINE sets TYPED to LINE (a line of `ip -batch`, `sysctl -w K=V`, or a whole command) as one command to
# type in namespace NS.
TYPED=
typed() {
  case $2 in
    sysctl\ -w\ *) if [[ $1 == host ]]; then TYPED=$2; else TYPED="ip netns exec $1 $2"; fi ;;
    netns\ * | nft\ * | kill\ * | ip\ *) TYPED=$2 ;;
    fdb\ *) if [[ $1 == host ]]; then TYPED="bridge $2"; else TYPED="bridge -n $1 $2"; fi ;; # `bridge -batch`
    *) if [[ $1 == host ]]; then TYPED="ip $2"; else TYPED="ip -n $1 $2"; fi ;;
  esac
  if [[ $TYPED == netns\ * ]]; then TYPED="ip $TYPED"; fi
}

# logged NS STATUS LINE...: each LINE, run in namespace NS, ended with STATUS (an exit status, or "not run").
logged() {
  local ns=$1 status=$2 when line ip="ip -n $1 "
  local -a out=()
  shift 2
  if [[ $ns == host ]]; then ip="ip "; fi
  printf -v when '%(%Y-%m-%dT%H:%M:%S%z)T' -1
  for line; do
    case $line in
      sysctl\ -w\ * | netns\ * | nft\ * | kill\ * | ip\ * | fdb\ *) typed "$ns" "$line" ;;
      *) TYPED=$ip$line ;; # a line of `ip -batch`, the most of them: no function call
    esac
    out+=("$when ${SCRIPT}[$$] $ns: $TYPED: $status")
  done
  if ! printf '%s\n' "${out[@]}" 2>/dev/null >>"$STATE_DIR/$LAB.log"; then
    if [[ -z $LOG_LOST ]]; then say "could not write the log $STATE_DIR/$LAB.log (is $STATE_DIR full?)" >&2; fi
    LOG_LOST=1
  fi
}
LOG_LOST=

# --- the lab's record, and the marks on what the lab made -------------------------------------------------------
# STATE_DIR/LAB.made says what up made outside the namespaces it made. Its first line is `netgen-record 2 INSTANCE`:
# INSTANCE, 16 hex digits drawn by the up that first made the lab, is in this root-only file and in the marks up
# puts on what it makes, in the same `ip -batch` as the line that makes it, and nowhere else. Then a line each:
#   netns NAME NSID            namespace NAME, given the id NSID in the host (`ip netns set`: a number drawn for it)
#                              by the batch line after the one that makes it (no line can do both: an ip killed
#                              between the two leaves a namespace with no mark, which down leaves and names)
#   netns NAME lo              namespace NAME, taken over (adopt=True): its lo is in the link group GROUP
#   link NS NAME               link NAME in the host, in the link group GROUP (a number INSTANCE gives, made so
#                              by the very line that makes the link: `ip link add name NAME group GROUP type ...`)
#   route4|route6 NS DEST SPEC  a route outside the lab's namespaces (SPEC: `via GW dev DEV` or `dev DEV`), made
#                              with protocol ROUTE_PROTO
#   service NS NAME PID START  a process up started (START: when, from /proc/PID/stat), whose environment holds
#                              NETGEN_SERVICE=MARK:NS/NAME
# A line claims its object only while the object carries the line's mark. What a failed or killed run never made,
# what another tool made under a lab name (in a race, or after a kill), and what has since replaced the lab's object
# (the kernel reuses inode numbers, ifindexes and pids) carry no such mark: they are never removed, taken over or
# signalled. up writes the lines before it makes their objects; a rolled-back up and down drop the lines whose
# objects are gone (prune_record), and the record goes when none is left. Links up makes elsewhere (in an external
# namespace) carry the mark too; links inside the lab's own namespaces go with them.
# Every line is checked as it is read (load_record): one that does not match this grammar, or names what the lab
# does not have, is reported with its file and line, never used, and kept for `down.sh --force` to clear.
RECORD=$STATE_DIR/$LAB.made
ROUTE_PROTO=110
declare -A MADE=()     # KIND/NS/NAME (from checked names only) -> NSID, route SPEC, PID:START, or "marked"
declare -A DECLARED=() # NS/NAME of each service the lab declares
INSTANCE=
MARK=
GROUP=
RECORD_BAD=() # the lines of the record that claim nothing: kept as they are
NAME_RE='[A-Za-z0-9_.][A-Za-z0-9_.-]*' # (no bounded repetition: bash compiles each regex at each use, slowly)

# bad_line N LINE WHY: line N of the record is never used; it is named, its bytes shown printable.
bad_line() {
  local shown=${2//[^[:print:]]/?}
  RECORD_BAD+=("$2")
  printf '%s: %s:%s: %s, never used: %s\n' "$SCRIPT" "$RECORD" "$1" "$3" "${shown:0:120}" >&2
}

# load_record reads the record into MADE, INSTANCE and MARK, each line checked (see above). A record that is not a
# regular file stops the script (exit 2) with the way out; down.sh --force does not read it.
load_record() {
  local line n=0 key id ns name pid kind
  local netns="^netns ($NAME_RE) ([0-9]+|lo)\$" link="^link ($NAME_RE) ($NAME_RE)\$"
  local addr='[0-9A-Fa-f:.]+' service="^service ($NAME_RE) ($NAME_RE) ([0-9]+) ([0-9]+)\$"
  local route="^route([46]) ($NAME_RE) (default|$addr(/[0-9]+)?) ((via $addr )?dev $NAME_RE)\$"
  local -A lab=() external=() # the lab's namespaces, as sets: a glob over the list for each line cost 0.15 s at 500
  MADE=() RECORD_BAD=() INSTANCE='' MARK='' GROUP=''
  if [[ ! -e $RECORD && ! -L $RECORD ]]; then return 0; fi
  for ns in "${NAMESPACES[@]}"; do lab[$ns]=1; done
  for ns in "${EXTERNAL_NS[@]}"; do external[$ns]=1; done
  if [[ -L $RECORD || ! -f $RECORD ]]; then
    die 2 "the record $RECORD is not a regular file: refused; \`down.sh --force\` removes the lab by its names, and the record with it"
  fi
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1)) key='' id=''
    if ((n == 1)); then
      if [[ $line =~ ^netgen-record\ 2\ ([0-9a-f]{16})$ ]]; then
        instance "${BASH_REMATCH[1]}"
      else
        bad_line 1 "$line" "not the record's first line (netgen-record 2 INSTANCE): no line of it claims anything"
      fi
      continue
    fi
    # the line's kind, when it matches its regex and its numbers are not too long for bash's arithmetic: one regex
    # for each line, with no bounded repetition (bash compiles a regex at each use; {1,10} doubles the cost)
    kind=''
    case $line in
      netns\ *) if [[ $line =~ $netns && ${#BASH_REMATCH[2]} -le 10 ]]; then kind='netns'; fi ;;
      link\ *) if [[ $line =~ $link ]]; then kind='link'; fi ;;
      route*) if [[ $line =~ $route && ${#BASH_REMATCH[4]} -le 4 ]]; then kind='route'; fi ;;
      service\ *) if [[ $line =~ $service && ${#BASH_REMATCH[3]} -le 10 && ${#BASH_REMATCH[4]} -le 20 ]]; then kind='service'; fi ;;
    esac
    if [[ $kind == netns ]]; then
      ns=${BASH_REMATCH[1]} key=netns/$ns/ id=${BASH_REMATCH[2]}
      if [[ -z ${lab[$ns]:-} || -n ${external[$ns]:-} ]]; then id=''; fi
    elif [[ $kind == link ]]; then
      ns=${BASH_REMATCH[1]} key=link/$ns/${BASH_REMATCH[2]} id=marked
    elif [[ $kind == route ]]; then
      ns=${BASH_REMATCH[2]} key=route${BASH_REMATCH[1]}/$ns/${BASH_REMATCH[3]} id=${BASH_REMATCH[5]}
    elif [[ $kind == service ]]; then
      ns=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]} pid=${BASH_REMATCH[3]}
      key=service/$ns/$name id=$((10#$pid)):${BASH_REMATCH[4]}
      if [[ -z ${DECLARED[$ns/$name]:-} ]]; then
        bad_line "$n" "$line" "names a service the lab does not declare"
        continue
      fi
      if ((10#$pid <= 1)); then
        bad_line "$n" "$line" "names pid $pid"
        continue
      fi
    else
      bad_line "$n" "$line" "not a line of the record"
      continue
    fi
    if [[ $key != service/* && $key != netns/* && $ns != host && -z ${external[$ns]:-} ]]; then id=''; fi
    if [[ -z $id ]]; then
      bad_line "$n" "$line" "names what the lab does not have"
    elif [[ -z $INSTANCE ]]; then
      bad_line "$n" "$line" "the record has no instance line, so it proves nothing"
    elif [[ -n ${MADE[$key]+set} ]]; then
      bad_line "$n" "$line" "a second line for the same object"
    else
      MADE[$key]=$id
    fi
  done <"$RECORD"
}

# declare_service NS NAME COMMAND...: the lab declares this service (lab_services, run to list them).
declare_service() { DECLARED[$1/$2]=1; }
declared_services() {
  local keep=$SERVICE_DO
  SERVICE_DO=declare_service
  lab_services
  SERVICE_DO=$keep
}

# new_instance: the first up of the lab draws its INSTANCE (and a record that proves nothing gets a new one).
new_instance() {
  local uuid
  uuid=$(</proc/sys/kernel/random/uuid)
  uuid=${uuid//-/}
  instance "${uuid:0:16}"
}

# instance HEX: the lab's INSTANCE, and the marks it gives: MARK (netgen:LAB:INSTANCE, a service's) and GROUP (a
# link's group, from 2^28 up: no link is in such a group unless someone puts it there).
instance() {
  INSTANCE=$1 MARK=netgen:$LAB:$1 GROUP=$((0x10000000 + 0x${1:0:7}))
}

# new_nsid NS sets NSID to a namespace id drawn for NS, one the host does not use: at least 2^28, far above the
# ones the kernel hands out by itself (from 0 up). A run draws the first at random and counts up from it: the
# kernel scans a namespace's ids whenever a link crosses into another, and 500 ids scattered over 2^31 made that
# scan cost 0.3 s of a 500-namespace up; a run of consecutive ids costs nothing.
declare -A NSID_USED=()
NSID=
new_nsid() {
  local key
  if ((${#NSID_USED[@]} == 0)); then
    for key in "${!HAVE[@]}"; do
      if [[ $key == nsid/* ]]; then NSID_USED[${HAVE[$key]}]=1; fi
    done
    NSID_USED[-]=1
    NSID=$(((${SRANDOM:-$((RANDOM << 15 | RANDOM))} & 0x3fffffff) % 0x6ff00000 + 0x10000000 - 1))
  fi
  while :; do
    NSID=$((NSID + 1))
    if ((NSID > 0x7fffffff)); then NSID=$((0x10000000)); fi
    if [[ -z ${NSID_USED[$NSID]:-} ]]; then break; fi
  done
  NSID_USED[$NSID]=1
}

# claims KEY: the live object (as HAVE read it) carries the mark of the record's line KEY.
claims() {
  local key=$1 rest ns name
  rest=${key#*/} ns=${rest%%/*} name=${rest#*/}
  if [[ -z ${MADE[$key]:-} ]]; then return 1; fi
  case $key in
    netns/*)
      if [[ ${MADE[$key]} == lo ]]; then
        [[ -n $GROUP && ${HAVE[group/$ns/lo]:-} == "$GROUP" ]]
      else
        [[ -n ${HAVE[nsid/$ns/]:-} && ${HAVE[nsid/$ns/]} == "${MADE[$key]}" ]]
      fi
      ;;
    link/*) [[ -n $GROUP && ${HAVE[group/$ns/$name]:-} == "$GROUP" ]] ;;
    route[46]/*) [[ ${HAVE[$key]:-} == "${MADE[$key]}" && ${HAVE[proto/$ns/$name]:-} == "$ROUTE_PROTO" ]] ;;
    service/*) marked_service "${MADE[$key]}" "$ns" "$name" ;;
    *) false ;;
  esac
}

# prune_record drops the lines whose objects are gone or no longer carry their mark, as HAVE last read them (the
# host, and the namespaces named in the record's link and route lines).
prune_record() {
  local key
  for key in "${!MADE[@]}"; do
    if ! claims "$key"; then unset -v 'MADE[$key]'; fi
  done
}

# save_record writes the record whole (write_file), or removes it when no line is left.
save_record() {
  local key text
  if ((${#MADE[@]} + ${#RECORD_BAD[@]} == 0)); then
    rm -f -- "$RECORD" "$RECORD.new"
    return 0
  fi
  if [[ -z $INSTANCE ]]; then new_instance; fi
  local -a lines=()
  for key in "${!MADE[@]}"; do
    record_line "$key"
    lines+=("$LINE")
  done
  text="netgen-record 2 $INSTANCE"$'\n'
  if ((${#lines[@]})); then text+=$(printf '%s\n' "${lines[@]}" | sort)$'\n'; fi
  if ((${#RECORD_BAD[@]})); then text+=$(printf '%s\n' "${RECORD_BAD[@]}")$'\n'; fi
  if ! write_file "$RECORD" "${text%$'\n'}"; then
    say "could not write the record $RECORD (is $STATE_DIR full?)" >&2
    return 1
  fi
}

# reserve_room: before its first change, up makes sure that the state directory has room for what this run writes
# there (its batches, the record, the log): four times the lab's part of this script, and 64 KiB. Without it, up
# stops (exit 2) and changes nothing.
reserve_room() {
  local need=1048576 part
  part=$(grep -b -m 1 '^# ===== netgen engine' -- "$0" 2>/dev/null) && need=$((${part%%:*} * 4 + 65536))
  if ! head -c "$need" /dev/zero 2>/dev/null >"$TMP/room"; then
    rm -f -- "$TMP/room"
    die 2 "the state directory $STATE_DIR has no room for this run (it needs about $((need / 1024)) KiB); nothing was changed"
  fi
  rm -f -- "$TMP/room"
}

# record_line KEY sets LINE to the record's line for MADE[KEY].
LINE=
record_line() {
  local rest=${1#*/} id=${MADE[$1]}
  local ns=${rest%%/*} name=${rest#*/}
  case $1 in
    netns/*) LINE="netns $ns $id" ;;
    link/*) LINE="link $ns $name" ;;
    route4/* | route6/*) LINE="${1%%/*} $ns $name $id" ;;
    service/*) LINE="service $ns $name ${id%%:*} ${id#*:}" ;;
  esac
}

# link_ids NS prints NAME CARRIER (up or down) for each link in namespace NS (host: here) whose name a lab could give
# (letters, digits, - _ .: no other name can match a lab object, and in ip's JSON a quote inside a name is escaped).
# up's last check reads the carriers; it fails when ip does.
link_ids() {
  local json
  json=$(in_ns "$1" ip -j link show) || return 1
  awk 'BEGIN { RS = "[{]\"ifindex\":" }
    NR > 1 && match($0, /"ifname":"[-A-Za-z0-9_.]+"/) {
      print substr($0, RSTART + 10, RLENGTH - 11), ($0 ~ /"flags":\[[^]]*"LOWER_UP"/ ? "up" : "down")
    }' <<<"$json"
}

# adopted_namespaces prints the namespaces the record says were taken over (their mark is on their lo).
adopted_namespaces() {
  local key rest
  for key in "${!MADE[@]}"; do
    if [[ $key == netns/* && ${MADE[$key]} == lo ]]; then rest=${key#netns/} && printf '%s\n' "${rest%/}"; fi
  done
}

# read_marks reads again what proves the record's lines, for prune_record: the host's namespace ids, links and
# routes, and the links and routes of the external namespaces. It returns 1 when a reading fails (the record then
# keeps every line: a line claims only what carries its mark).
read_marks() {
  local ns reading
  local -a operands=()
  HAVE=()
  reading=$(printf '%s\n' "$NAMED_READING" | ip -j -d -batch - 2>/dev/null) || return 1
  parse host <(printf '%s\n' "$reading")
  for ns in "${EXTERNAL_NS[@]}" $(adopted_namespaces); do
    if [[ -e /run/netns/$ns ]]; then
      reading=$(printf '%s\n' "$READING" | in_ns "$ns" ip -j -d -batch - 2>/dev/null) || return 1
      parse "$ns" <(printf '%s\n' "$reading")
    fi
  done
}

# --- host sysctls: shared by the labs that set them -------------------------------------------------------------
# STATE_DIR/sysctl/KEY holds `original VALUE` (what the host had before the first lab changed it) and `LAB VALUE`
# for each lab that is up and sets it. The last lab to go puts the original back, and only if the host still holds
# the value that lab set; otherwise the value is someone else's and stays. One flock (sysctl/.lock) keeps two labs
# from editing a record at once.
SYSCTL_DIR=$STATE_DIR/sysctl

# sysctl_take KEY VALUE HAVE: this lab sets host sysctl KEY to VALUE, which the host has as HAVE (read, never guessed).
sysctl_take() {
  local file=$SYSCTL_DIR/$1
  (umask 077 && mkdir -p -- "$SYSCTL_DIR")
  (
    flock 9
    if [[ ! -e $file ]]; then
      if [[ $3 == "$2" ]]; then exit 0; fi # already so before any lab: nothing for the lab to put back
      printf 'original %s\n' "$3" >"$file"
    fi
    sysctl_record "$file" || exit 1
    write_file "$file" "$(sysctl_text "$2")"
  ) 9>>"$SYSCTL_DIR/.lock"
}

# sysctl_record FILE reads a sysctl record into the caller's original, mine (this lab's value) and others (the
# other labs that set it, with their values), each line checked: `original VALUE`, then `LAB VALUE` per lab. A
# record that does not match is named, with its file and line, and used for nothing (returns 1).
sysctl_record() {
  local line n=0 re='^(original|[A-Za-z0-9_][A-Za-z0-9_.-]*) ([[:alnum:][:blank:]_.:,/+-]*)$'
  original='' mine='' others=() other_values=()
  if [[ -L $1 || ! -f $1 ]]; then
    say "$1: not a regular file: used for nothing" >&2
    return 1
  fi
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    if ! [[ $line =~ $re ]] || { ((n == 1)) && [[ ${BASH_REMATCH[1]} != original ]]; } ||
      { ((n > 1)) && [[ ${BASH_REMATCH[1]} == original ]]; }; then
      line=${line//[^[:print:]]/?}
      say "$1:$n: not a line of a sysctl record, so the record is used for nothing: ${line:0:120}" >&2
      return 1
    fi
    case ${BASH_REMATCH[1]} in
      original) original=${BASH_REMATCH[2]} ;;
      "$LAB") mine=${BASH_REMATCH[2]} ;;
      *) others+=("${BASH_REMATCH[1]}") other_values+=("${BASH_REMATCH[2]}") ;;
    esac
  done <"$1"
}

# sysctl_text [VALUE] prints the record as sysctl_record read it, with this lab's line (VALUE) or without it.
sysctl_text() {
  local i
  printf 'original %s\n' "$original"
  for i in "${!others[@]}"; do printf '%s %s\n' "${others[i]}" "${other_values[i]}"; done
  if (($#)); then printf '%s %s\n' "$LAB" "$1"; fi
}

# write_file FILE TEXT: FILE holds TEXT and a newline, written whole (a new file renamed over it) or, when the state
# directory has no room for a new file, in place (then it only ever shrinks: what down and rollback write).
write_file() {
  if { printf '%s\n' "$2" >"$1.new" && mv -f -- "$1.new" "$1"; } 2>/dev/null; then return 0; fi
  rm -f -- "$1.new"
  printf '%s\n' "$2" 2>/dev/null >"$1"
}

# sysctl_give KEY: this lab no longer sets KEY; prints what happened to it. With --plan: only what would, and it
# adds the command to PLANNED.
sysctl_give() {
  local file=$SYSCTL_DIR/$1 original mine now
  local -a others other_values
  if [[ ! -e $file && ! -L $file ]]; then return 0; fi
  if [[ -n $PLAN ]]; then
    sysctl_record "$file" || return 1
    now=$(<"/proc/sys/${1//.//}")
    if [[ -n $mine && ${#others[@]} == 0 && $now == "$mine" ]]; then PLANNED+=("sysctl -w $1=$original"); fi
    if [[ -n $mine && ${#others[@]} != 0 ]]; then LEFT+=("host: sysctl $1 at $now: lab ${others[*]} sets it too"); fi
    return 0
  fi
  (
    flock 9
    sysctl_record "$file" || exit 1
    if [[ -z $mine ]]; then exit 0; fi
    if ((${#others[@]})); then
      write_file "$file" "$(sysctl_text)" || exit 1
      echo "host: sysctl $1 left at $mine: lab ${others[*]} sets it too"
      exit 0
    fi
    rm -f -- "$file"
    now=$(<"/proc/sys/${1//.//}")
    if [[ $now == "$original" ]]; then
      exit 0 # never changed (a run stopped before it set it), or put back by someone
    elif [[ $now != "$mine" ]]; then
      echo "host: sysctl $1 left at $now: changed since the lab set it to $mine"
    elif printf '%s\n' "$original" >"/proc/sys/${1//.//}"; then
      echo "host: sysctl $1 back to $original"
    else
      write_file "$file" "$(sysctl_text "$mine")" || true
      echo "could not put sysctl $1 back to $original" >&2
      exit 1
    fi
  ) 9>>"$SYSCTL_DIR/.lock"
}

# set_sysctl NS KEY VALUE writes a network sysctl inside namespace NS.
set_sysctl() {
  local path=/proc/sys/${2//.//}
  if [[ $1 == host ]]; then
    printf '%s\n' "$3" >"$path"
  else
    # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
    in_ns "$1" bash -c 'printf "%s\n" "$2" >"$1"' _ "$path" "$3"
  fi
}

# --- services: processes the lab runs in its namespaces -----------------------------------------------------------
# up starts each service detached, in its own session and process group, in /, reading /dev/null and appending its
# output to STATE_DIR/LAB.NS.NAME.log, without the lab's lock (a service that held it would keep every later run of
# the lab waiting), with NETGEN_SERVICE=MARK:NS/NAME in its environment, and records it as `service NS NAME PID
# START`: START, field 22 of /proc/PID/stat, is when the process started, so a pid the kernel has since given to
# another process does not match. A service is the lab's only while its line names a service the lab declares, its
# pid and start time match and its environment holds its mark (marked_service). verify checks that it runs, in
# namespace NS; down stops it first (TERM to its process group, then KILL after NETGEN_STOP_WAIT seconds, default
# 5), and signals nothing else by it. The lab's part lists them as `service NS NAME COMMAND...` (a string command
# as `sh -c TEXT`); SERVICE_DO names what a script does with each: start_service (up.sh), check_service,
# absent_service (verify.sh --absent), declare_service (every script, to check the record's lines).
SERVICE_DO=check_service
service() { "$SERVICE_DO" "$@"; }

# proc_id PID sets PROC_ID to PID:START and PROC_GROUP to its process group, if it runs (a zombie has ended), or
# returns 1.
PROC_ID=
PROC_GROUP=
proc_id() {
  local stat
  local -a fields
  PROC_ID='' PROC_GROUP=''
  [[ $1 =~ ^[0-9]+$ ]] && (($1 > 1)) || return 1
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -ra fields <<<"${stat##*) }" # fields 3 on: after the name of the command, which may hold spaces and parentheses
  [[ ${fields[0]} != [ZX] ]] || return 1
  PROC_ID=$1:${fields[19]} PROC_GROUP=${fields[2]}
}

# alive ID: the process ID (PID:START) still runs.
alive() { proc_id "${1%%:*}" && [[ $PROC_ID == "$1" ]]; }

# marked_service ID NS NAME: the process ID (PID:START) runs and is this lab's service NAME in NS (its mark).
marked_service() { alive "$1" && has_mark "${1%%:*}" "$2" "$3"; }

# has_mark PID NS NAME: the environment of process PID holds the mark of the lab's service NAME in NS.
has_mark() {
  local entry
  local -a environment
  mapfile -d '' -t environment <"/proc/$1/environ" 2>/dev/null || return 1
  for entry in "${environment[@]}"; do
    if [[ $entry == "NETGEN_SERVICE=$MARK:$2/$3" ]]; then return 0; fi
  done
  return 1
}

# signal_service SIGNAL ID: SIGNAL to the service's process group (it leads one: setsid), or to it alone if it
# no longer does. Never to a group or pid 1 or lower.
signal_service() {
  if ! proc_id "${2%%:*}"; then return 0; fi
  if [[ $PROC_GROUP == "${2%%:*}" ]]; then
    kill "-$1" -- "-${2%%:*}" 2>/dev/null || true
  else
    kill "-$1" "${2%%:*}" 2>/dev/null || true
  fi
}

# service_state ID NS NAME sets SERVICE_STATE: running (the lab's process ID runs in namespace NS), stopped, or
# where it runs.
SERVICE_STATE=
service_state() {
  local here there
  SERVICE_STATE=stopped
  if [[ -z $1 ]] || ! marked_service "$1" "$2" "$3"; then return 0; fi
  here=$(stat -L -c %d:%i "/proc/${1%%:*}/ns/net" 2>/dev/null) || here=unknown
  there=$(stat -L -c %d:%i "/run/netns/$2" 2>/dev/null) || there=absent
  if [[ $here == "$there" ]]; then SERVICE_STATE=running; else SERVICE_STATE="pid ${1%%:*} outside namespace $2"; fi
}

# check_service NS NAME COMMAND...: verify's check, worded as the others.
check_service() {
  service_state "${MADE[service/$1/$2]:-}" "$1" "$2"
  result "$1 service $2" running "$SERVICE_STATE" 0
}

# absent_service NS NAME COMMAND...: after down, the service no longer runs.
absent_service() {
  service_state "${MADE[service/$1/$2]:-}" "$1" "$2"
  if [[ $SERVICE_STATE != running ]]; then SERVICE_STATE=stopped; fi
  result "$1 service $2" stopped "$SERVICE_STATE" 0
}

# stop_service KEY stops the service the record names under KEY if it is still the lab's (marked_service): TERM,
# then KILL after NETGEN_STOP_WAIT seconds. The line leaves the record either way.
stop_service() {
  local id=${MADE[$1]:-} i wait=${NETGEN_STOP_WAIT:-5} rest=${1#service/}
  unset -v 'MADE[$1]'
  if [[ -z $id ]] || ! marked_service "$id" "${rest%%/*}" "${rest#*/}"; then return 0; fi
  [[ $wait =~ ^[0-9]+$ ]] || wait=5
  signal_service TERM "$id"
  for ((i = 0; i < wait * 10; i++)); do
    if ! alive "$id"; then return 0; fi
    sleep 0.1
  done
  say "$rest: still running after ${wait} s; killing pid ${id%%:*} and its process group" >&2
  signal_service KILL "$id"
  for ((i = 0; i < 20; i++)); do
    if ! alive "$id"; then return 0; fi
    sleep 0.1
  done
}

# stop_marked NS NAME stops every process that carries the mark of service NAME in NS (a service this run started
# but had not recorded yet, when a signal came).
stop_marked() {
  local path pid
  for path in /proc/[0-9]*/environ; do
    pid=${path#/proc/} pid=${pid%/environ}
    if has_mark "$pid" "$1" "$2" && proc_id "$pid"; then
      MADE[service/$1/$2]=$PROC_ID
      stop_service "service/$1/$2"
    fi
  done
}

# --- services: installed before up changes anything, answering before it says the lab is up ----------------------
# up.sh's lab part lists SERVICES: NS NAME PROGRAM LOC PORTS for each service (LOC its lab line; PORTS, between
# spaces, the ADDRESS:PORT that the lab's expectations reach by TCP on its namespace's addresses, an IPv6 address in
# brackets). A program that is not on the host is refused before any change; a service that runs but does not
# answer on its ports is a failure of up's last check, which waits for it (NETGEN_VERIFY_WAIT) and rolls back
# naming it, with the last lines of its log.

# services_installed: each service's program is a command of the host that can be run (a namespace sees the host's
# files; bash's `command -v` also names a file it cannot run, when it finds no other), or up refuses, changing
# nothing (exit 1).
services_installed() {
  local i found
  local -a missing=()
  for ((i = 0; i < ${#SERVICES[@]}; i += 5)); do
    if ! found=$(command -v -- "${SERVICES[i + 2]}" 2>/dev/null) || [[ $found == /* && ! (-f $found && -x $found) ]]; then
      missing+=("${SERVICES[i]}: service ${SERVICES[i + 1]} (${SERVICES[i + 3]}) runs ${SERVICES[i + 2]}, which is not installed on this host (no ${SERVICES[i + 2]} in PATH that can be run)")
    fi
  done
  if ((${#missing[@]} == 0)); then return 0; fi
  printf '%s\n' "${missing[@]/#/$SCRIPT: }" >&2
  n_words "${#missing[@]}" "service's program is" "services' programs are"
  die 1 "nothing was changed: $N_WORDS not installed (above); install them, or change the lab"
}

# services_answer: up's last check, for each service that runs: it answers on each of its PORTS, connected to from
# inside its namespace (a failure that may settle: the check waits for a server that is starting).
services_answer() {
  local i item addr port have
  local -a ports
  for ((i = 0; i < ${#SERVICES[@]}; i += 5)); do
    if [[ -z ${SERVICES[i + 4]} ]]; then continue; fi
    service_state "${MADE[service/${SERVICES[i]}/${SERVICES[i + 1]}]:-}" "${SERVICES[i]}" "${SERVICES[i + 1]}"
    if [[ $SERVICE_STATE != running ]]; then continue; fi # its own check says so
    read -ra ports <<<"${SERVICES[i + 4]}"
    for item in "${ports[@]}"; do
      port=${item##*:} addr=${item%:*} addr=${addr#[} addr=${addr%]}
      # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
      if have=$(in_ns "${SERVICES[i]}" timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$addr" "$port" 2>&1); then
        have=open
      elif [[ $have == *refused* ]]; then
        have=refused
      else
        have="no answer"
      fi
      result "${SERVICES[i]} service ${SERVICES[i + 1]} tcp $item" open "$have" 1
    done
  done
}

# service_logs: after up's last check failed, the last lines of the log of each service a failure names.
service_logs() {
  local i line log
  for ((i = 0; i < ${#SERVICES[@]}; i += 5)); do
    for line in "${REPORT[@]}"; do
      if [[ $line == "FAIL ${SERVICES[i]} service ${SERVICES[i + 1]}"[:\ ]* ]]; then
        log=$STATE_DIR/$LAB.${SERVICES[i]}.${SERVICES[i + 1]}.log
        if [[ -s $log ]]; then
          say "${SERVICES[i]}: service ${SERVICES[i + 1]} (${SERVICES[i + 3]}), the last lines of $log:" >&2
          tail -n 5 -- "$log" | sed 's/^/  | /' >&2
        else
          say "${SERVICES[i]}: service ${SERVICES[i + 1]} (${SERVICES[i + 3]}) has written nothing to $log" >&2
        fi
        break
      fi
    done
  done
}

# --- checks -----------------------------------------------------------------------------------------------------
# Every check adds one line to REPORT: 'ok   WHAT: VALUE' or 'FAIL WHAT: want X, have Y'.
REPORT=()
PASSED=0
FAILED=0
SETTLING=0 # failures that may still resolve by waiting

# result WHAT WANT HAVE SETTLES (1: a failure that may resolve by waiting): a check made in bash (expectations,
# nftables rules, addresses in duplicate address detection); judge words the others the same way.
result() {
  if [[ $3 == "$2" ]]; then
    PASSED=$((PASSED + 1))
    REPORT+=("ok   $1: $2")
  else
    FAILED=$((FAILED + 1))
    SETTLING=$((SETTLING + $4))
    REPORT+=("FAIL $1: want $2, have $3")
  fi
}

# judge: the checks on its standard input, one per line, ATTR NS OBJECT WANT (lines starting with # are comments),
# compared with the live state (HAVE, and FACTS in verify.sh) by the awk program below, which words each result
# as a line of REPORT: the 6,000 checks of a 500-namespace star take 0.07 s there, 0.35 s as bash function calls.
# One wording for all: verify.sh reports a mismatch as up.sh words a conflict.
# A veth whose peer cannot be told from the readings (verify.sh) has its namespace read again, naming its peers
# (name_peers), and the checks are judged again.
judge() {
  local key status passed failed settling
  local -a lines=() facts=()
  if [[ -n $FACTS ]]; then facts=("$TMP/facts"); fi
  printf '%s\n' "$JUDGE_AWK" >"$TMP/judge.awk"
  cat >"$TMP/checks"
  # what bash holds (in verify.sh: sysctls and stale namespace files only) joins what awk parsed
  for key in "${!HAVE[@]}"; do printf '%s\t%s\n' "$key" "${HAVE[$key]}"; done >"$TMP/have"
  while :; do
    status=0
    awk -v checks="$TMP/checks" -v names="$TMP/names" -f "$TMP/judge.awk" \
      "${facts[@]}" "$TMP/have" "$TMP/checks" >"$TMP/report" || status=$?
    ((status == 3)) || break # 3: names in $TMP/names to read again
    while read -r key; do name_peers "$key"; done <"$TMP/names"
  done
  ((status == 0)) || die 2 "awk could not compare the checks with the live state (exit $status)"
  mapfile -t lines <"$TMP/report"
  read -r passed failed settling <<<"${lines[-1]}" # its last line: how many passed, failed, may settle
  unset 'lines[-1]'
  REPORT+=("${lines[@]}")
  PASSED=$((PASSED + passed)) FAILED=$((FAILED + failed)) SETTLING=$((SETTLING + settling))
}

# name_peers NS reads namespace NS once more, now naming the namespaces of its veths' peers.
name_peers() {
  printf 'named/%s\t1\n' "$1" >>"$TMP/facts"
  if in_ns "$1" ip -j -d -batch - <"$TMP/query.naming" >"$TMP/named.$1" 2>/dev/null; then
    parse "$1" "$TMP/named.$1" naming
  fi
}

# The checks, by attribute: what each compares, and how a mismatch reads. Carrier, and an address in duplicate
# address detection, may settle by waiting.
# peer NS LINK WANT holds when the veth's other end is WANT (ns/name): ifindex and iflink matching both ways, and
# the peer in the namespace WANT names. Only the host's reading names peers' namespaces; a peer elsewhere is taken
# as named when its other end names NS, or when the two ends match both ways and no other veth between namespaces
# looks like either (up gives those their own ifindexes). Any doubt, and NS is to be read again, naming its peers.
# shellcheck disable=SC2016 # expanded by awk
JUDGE_AWK='BEGIN { Q = "\047"; BARE = "^[^ " Q "\\\\]+" }
function split_words(s, w, n, t, i) { # the words of s, bare or in single quotes (as netgen writes them), in w
  n = 0
  while (match(s, /[^ ]/)) {
    s = substr(s, RSTART)
    t = ""
    while (s != "" && substr(s, 1, 1) != " ") {
      if (substr(s, 1, 1) == Q) {
        i = index(substr(s, 2), Q)
        t = t substr(s, 2, i - 1)
        s = substr(s, i + 2)
      } else if (substr(s, 1, 1) == "\\") {
        t = t substr(s, 2, 1)
        s = substr(s, 3)
      } else {
        match(s, BARE)
        t = t substr(s, 1, RLENGTH)
        s = substr(s, RLENGTH + 1)
      }
    }
    w[++n] = t
  }
  return n
}
function result(what, want, have, settles) {
  if (have == want) {
    passed++
    print "ok   " what ": " want
  } else {
    failed++
    settling += settles
    print "FAIL " what ": want " want ", have " have
  }
}
function peer(ns, obj, want, i, pns, other, index_, link, where) {
  i = index(want, "/")
  pns = i ? substr(want, 1, i - 1) : want
  other = pns "/" (i ? substr(want, i + 1) : want)
  index_ = have["ifindex/" ns "/" obj]
  link = have["iflink/" ns "/" obj]
  where = have["peerns/" ns "/" obj]
  if (where == "unnamed") {
    if (have["peerns/" other] == ns || (link == have["ifindex/" other] && have["iflink/" other] == index_ &&
        have["cross/" index_ "/" link] == 1 && have["cross/" link "/" index_] == 1)) where = pns
    else if (!(("named/" ns) in have)) need[ns] = 1
  }
  if (index_ == "") return "absent"
  if (where == "unnamed") return "a link in another namespace"
  if (where != pns) return "a link in " where
  if ((link == have["ifindex/" other] || link == substr(other, length(pns) + 2)) &&
      (have["iflink/" other] == index_ || have["iflink/" other] == obj)) return want
  return "another link (iflink " (link == "" ? "none" : link) ")"
}
function check(attr, ns, obj, want, h, settles) {
  h = have[attr "/" ns "/" obj]
  if (h == "") h = "absent"
  if (attr == "netns") result(ns " netns", want, h, 0)
  else if (attr == "addr") {
    if (h == want) h = "present"
    else if (index(h, want " (") == 1) {
      h = substr(h, length(want) + 3)
      sub(/\)$/, "", h)
      settles = 1
    } else if (h != "absent") h = "on " substr(h, 1, index(h " ", " ") - 1)
    result(ns "/" want " address " obj, "present", h, settles + 0)
  } else if (attr == "route4") result(ns " route " obj, want, h, 0)
  else if (attr == "route6") result(ns " route6 " obj, want, h, 0)
  else if (attr == "neigh") result(ns " neighbour " obj, want, h, 0)
  else if (attr == "fdb") result(ns " fdb " obj, want, h, 0)
  else if (attr == "peer") result(ns "/" obj " peer", want, peer(ns, obj, want), 0)
  else if (attr == "oper") result(ns "/" obj " carrier", want, h, 1)
  else if (attr == "link") result(ns "/" obj " kind", want, h, 0)
  else if (attr == "sysctl") result(ns " sysctl " obj, want, h, 0)
  else result(ns "/" obj " " attr, want, h, 0)
}
FILENAME != checks { # the live state: KEY<tab>VALUE, or count<tab>KEY (one more veth end between namespaces)
  i = index($0, "\t")
  if (substr($0, 1, i - 1) == "count") have[substr($0, i + 1)]++
  else have[substr($0, 1, i - 1)] = substr($0, i + 1)
  next
}
/^ *(#|$)/ { next }
split_words($0, w) != 4 { # never skipped in silence: a check lost is a difference not named
  print "not a check (ATTR NS OBJECT WANT): " $0 >"/dev/stderr"
  bad = 1
  exit
}
{ check(w[1], w[2], w[3], w[4]) }
END {
  if (bad) exit 4
  for (ns in need) {
    print ns >names
    asked = 1
  }
  if (asked) exit 3
  print passed + 0, failed + 0, settling + 0
}'

# run_checks CHECKS [OBSERVE]: read the live state (OBSERVE, default observe) and run the function CHECKS, again
# every half second while only failures that may settle remain, for NETGEN_VERIFY_WAIT seconds (default 5).
run_checks() {
  local deadline=$((SECONDS + ${NETGEN_VERIFY_WAIT:-5}))
  while :; do
    REPORT=() PASSED=0 FAILED=0 SETTLING=0
    "${2:-observe}"
    "$1"
    if ((FAILED == 0 || FAILED > SETTLING || SECONDS >= deadline)) || [[ -n $INTERRUPTED ]]; then return 0; fi
    sleep 0.5
  done
}

# --- up.sh: running the lab's steps --------------------------------------------------------------------------
# The lab's part lists its steps in lab_steps: `section NS`, then `step`s and `expect`s, for each namespace. up.sh
# runs them twice: to check (MODE=check: conflicts are found before anything changes) and to apply (MODE=apply:
# each missing step is queued in its section's batch). step ATTR NS OBJ WANT [DO [UNDO]]: when the host already
# has WANT, nothing to do; when the object exists with another shape, a conflict; otherwise DO (one line of `ip
# -batch`) is queued for this section's batch, and UNDO is what takes it back. expect ATTR NS OBJ WANT: an
# external object, which must already be as the lab wants.
MODE=check
SECTION=
LAST=
SKIP=
CONFLICTS=()
BATCH=()
BATCH_UNDO=() # OWNER UNDO for each line of BATCH: the namespace where the undo runs
FDB=()        # the section's forwarding entries (lines of `bridge -batch`, which runs after ip's batch)
FDB_UNDO=()
SYSCTLS=()    # KEY VALUE OLD, repeated: set after the batch of the section
JOURNAL_NS=()
JOURNAL_UNDO=()
CHANGES=0
declare -A FRESH=() # lab namespaces that did not exist: nothing can be in them, and deleting them undoes all
declare -A LAB_NS=() # the namespaces this lab makes: what is inside them belongs to the lab with them
declare -A MAKING=()  # KEY -> ID: what this run makes outside its own new namespaces; the record names it first
declare -A STALE=()   # lab namespaces whose /run/netns file is no namespace (a killed `ip netns add`): replaced
declare -A OUTSIDE_LINK=() # the links the lab makes outside its own namespaces, as the steps name them
declare -A ADOPTED_NS=()   # namespaces this run takes over (adopt=True): their mark goes on their lo

# section NS [last]: the steps that follow run in namespace NS (last: the host's second batch, once the
# namespaces' batches are done); the batch of the section before is queued. A namespace that does not exist yet has
# nothing to check, so its steps are skipped in check mode.
section() {
  end_section
  if [[ -n $INTERRUPTED ]]; then stop_interrupted; fi
  SECTION=$1 LAST=${2:-} SKIP=
  if [[ $MODE == check && -n ${FRESH[$1]:-} ]]; then SKIP=1; fi
  if [[ $MODE == apply && -n ${ADOPTED_NS[$1]:-} ]]; then
    BATCH+=("link set dev lo group $GROUP") MARKS=$((MARKS + 1))
    BATCH_UNDO+=("$1 link set dev lo group ${HAVE[group/$1/lo]:-default}")
  fi
}

# run_steps runs the lab's steps in the current MODE, and queues the last section's batch.
run_steps() {
  SECTION='' LAST='' SKIP=''
  lab_steps
  end_section
}

# built STEP...: what up.sh checks once the lab is built, beyond its namespaces and services: the host's sysctls,
# and the carrier of the host's veths and of its bridges with ports. Namespaces given IPv6 addresses that do
# duplicate address detection (DAD) are read again then, until it is over.
BUILT=()
declare -A BUILT_CARRIER=() DAD=()
built() {
  case $1/$2 in
    sysctl/host) BUILT+=("sysctl host ${3@Q} ${4@Q}") ;;
    link/host) if [[ $4 == veth ]]; then BUILT_CARRIER[$3]=1; fi ;;
    master/host) BUILT_CARRIER[$4]=1 ;;
    addr/*) if [[ $3 == *:* && ${5:-} != *" nodad" ]]; then DAD[$2]=1; fi ;;
  esac
}

# An existing object of another shape is never changed: kind of link, bridge master, address on another link,
# route with another gateway. Link settings (state, mtu, mac) are simply set.
conflicting() {
  case $1 in
    netns | link | addr | route4 | route6 | neigh | fdb | vxlan) [[ $2 != absent ]] ;;
    master) [[ $2 != absent && $2 != none ]] ;;
    *) false ;;
  esac
}

step() {
  if [[ -n $SKIP ]]; then return 0; fi
  local attr=$1 ns=$2 obj=$3 want=$4 do=${5:-} undo=${6:-} owner=$2 have
  if [[ $MODE == apply ]]; then built "$@"; fi
  if [[ $attr == netns ]]; then owner=host; fi
  if [[ -n ${FRESH[$owner]:-} ]]; then # no conflict is possible, and no undo is needed
    if [[ $MODE == check || -z $do ]]; then return 0; fi
    if [[ $attr == sysctl ]]; then
      SYSCTLS+=("$obj" "$want" absent)
    elif [[ $attr == fdb ]]; then
      FDB+=("$do") FDB_UNDO+=("")
    else
      BATCH+=("$do") BATCH_UNDO+=("")
    fi
    if [[ $attr == addr ]]; then NEW_ADDRS+=("${obj%/*}"); fi
    return 0
  fi
  have=${HAVE[$attr/$ns/$obj]:-absent}
  if [[ $attr == addr ]]; then have=${have% (tentative)}; fi
  if [[ $attr == netns && $have == "a stale file in /run/netns" && -n ${LAB_NS[$ns]:-} ]]; then
    STALE[$ns]=1 have=absent # it holds nothing: deleted (`ip netns del` unlinks it) and the namespace made
  fi
  # A veth of the lab's whose far end's namespace is gone (`ip netns del` while a process kept the namespace, and
  # so the pair, alive) cannot be right: it is deleted and made again.
  if [[ $attr == link && $have == veth && $do =~ \ netns\ ([^ ]+)$ && -n ${FRESH[${BASH_REMATCH[1]}]:-} ]] &&
    made_here link "$ns" "$obj"; then
    REMAKE[$ns/$obj]=1
    forget_link "$ns" "$obj"
    have=absent
  fi
  if [[ $attr == link && $MODE == apply && -n ${REMAKE[$ns/$obj]:-} ]]; then BATCH+=("link del dev $obj") BATCH_UNDO+=(""); fi
  if [[ $MODE == apply ]]; then
    if [[ $attr == sysctl && $owner == host && -z $PLAN ]]; then take_sysctl "$obj" "$want" "$have"; fi
    if [[ $attr == link && $have == absent ]]; then CREATED[$ns/$obj]=1; fi
    if [[ $attr == addr && -n ${CREATED[$ns/$want]:-} ]]; then NEW_ADDRS+=("${obj%/*}"); fi
  fi
  if [[ $attr == netns || ($attr == link && -z ${LAB_NS[$owner]:-}) ]]; then
    if [[ $have == absent ]]; then
      if [[ $MODE == check && -n $do ]]; then making "$attr" "$ns" "$obj"; fi
    elif ! made_here "$attr" "$ns" "$obj"; then
      if [[ -z ${ADOPT_LINKS[$attr/$ns/$obj]+set} ]]; then
        foreign "$attr" "$ns" "$obj" "$have"
        return 0
      fi
      if [[ $MODE == check ]] && adoptable "$attr/$ns/$obj" "$have"; then
        ADOPTING+=("$attr/$ns/$obj")
        making "$attr" "$ns" "$obj" adopt
      elif [[ $MODE == apply && $attr == link ]]; then # taken over: it gets the lab's mark (a rollback takes it off)
        BATCH+=("link set dev $obj group $GROUP") MARKS=$((MARKS + 1))
        BATCH_UNDO+=("$owner link set dev $obj group ${HAVE[group/$ns/$obj]:-default}")
      elif [[ $MODE == apply ]]; then # a namespace's, on its lo, in its own batch
        ADOPTED_NS[$ns]=1
      fi
    fi
  elif [[ $attr == route[46] && -n $do && -z ${LAB_NS[$owner]:-} ]]; then
    # a route outside the lab's namespaces, marked with netgen's protocol; one over a device the lab does not make
    # (a node's underlay) is recorded, so that down removes it (others go with their device)
    if [[ $have == absent && $MODE == check && -z ${OUTSIDE_LINK[$ns/${want##* }]:-} ]]; then MAKING[$attr/$ns/$obj]=$want; fi
    do+=" proto $ROUTE_PROTO" undo+=${undo:+" proto $ROUTE_PROTO"}
  fi
  if [[ $attr == link && -z ${LAB_NS[$owner]:-} ]]; then OUTSIDE_LINK[$ns/$obj]=1; fi
  if [[ $have == "$want" ]]; then return 0; fi
  if conflicting "$attr" "$have"; then
    conflict "$attr" "$ns" "$obj" "$want"
    return 0
  fi
  if [[ $MODE == check ]]; then return 0; fi
  if [[ -z $do ]]; then return 0; fi
  # A setting changed on a link that existed before this run is put back on rollback.
  if [[ -z $undo && $have != absent && -n ${HAVE[link/$ns/$obj]:-} ]]; then
    case $attr in
      state) undo="link set dev $obj $have" ;;
      mtu) undo="link set dev $obj mtu $have" ;;
      mac) undo="link set dev $obj address $have" ;;
      hairpin) undo="link set dev $obj type bridge_slave hairpin $have" ;;
    esac
  fi
  if [[ $attr == sysctl ]]; then
    SYSCTLS+=("$obj" "$want" "$have")
    return 0
  fi
  if [[ $attr == fdb ]]; then
    FDB+=("$do")
    FDB_UNDO+=("${undo:+$owner $undo}")
    return 0
  fi
  # the mark: a link outside the lab's namespaces gets the lab's group in the very line that makes it (the far end
  # of a veth too); a namespace its id in the host, in the line after
  if [[ $attr == link && $have == absent ]]; then marked_link "$do" "$owner" && do=$MARKED; fi
  BATCH+=("$do")
  BATCH_UNDO+=("${undo:+$owner $undo}")
  if [[ $attr == netns ]]; then
    if [[ -n ${STALE[$ns]:-} ]]; then BATCH[-1]="netns del $ns" BATCH_UNDO[-1]='' BATCH+=("$do") BATCH_UNDO+=("host $undo"); fi
    BATCH+=("netns set $ns ${MAKING[netns/$ns/]}") BATCH_UNDO+=("") MARKS=$((MARKS + 1))
  fi
}

# marked_link LINE NS sets MARKED to LINE (`link add name NAME ... type KIND ...`, made in namespace NS) with `group
# GROUP` for each end outside the lab's own namespaces: before `type` for the link, at the end for a veth's peer
# (whose namespace is the one after `netns`, or NS).
MARKED=
marked_link() {
  local line=$1 far=$2 head tail
  if [[ -z ${LAB_NS[$2]:-} && $line == *" type "* ]]; then
    head=${line%%" type "*} tail=${line#*" type "}
    line="$head group $GROUP type $tail"
  fi
  if [[ $line == *" type veth peer "* ]]; then
    tail=${line#*" type veth peer "}
    if [[ $tail == *" netns "* ]]; then far=${tail##*" netns "} far=${far%% *}; fi
    if [[ -z ${LAB_NS[$far]:-} ]]; then line+=" group $GROUP"; fi
  fi
  MARKED=$line
}

# making ATTR NS OBJ [adopt]: this run makes (or takes over) the namespace or link outside its own namespaces; the
# record will say so, with its mark, before it is made (a link outside the host needs no line: it is found by its mark, and goes with its
# pair).
making() {
  if [[ $1 == netns && -n ${4:-} ]]; then # adopted: its lo gets the lab's group (it may have an id already)
    MAKING[netns/$2/]=lo
  elif [[ $1 == netns ]]; then
    new_nsid "$2"
    MAKING[netns/$2/]=$NSID
  elif [[ $2 == host ]]; then
    MAKING[link/$2/$3]=marked
  fi
}

# made_here ATTR NS OBJ: the live object carries this lab's mark: a namespace the id its record line gives, a link
# the lab's group.
made_here() {
  if [[ $1 == netns ]]; then
    [[ -n ${MADE[netns/$2/]:-} ]] && claims "netns/$2/"
  else
    [[ -n $GROUP && ${HAVE[group/$2/$3]:-} == "$GROUP" ]]
  fi
}

# foreign ATTR NS OBJ HAVE: an object with a name the lab gives was not made by it (it was there before up, or was
# made again by someone else since): up never takes it over.
foreign() {
  local what="$2/$3"
  if [[ $1 == netns ]]; then what="netns $2"; fi
  CONFLICTS+=("$what: exists ($4), not made by this lab; up does not take it over: remove it, rename it in the lab, or declare it external=True (used as it is) or adopt=True (taken over)")
}

# adoptable KEY HAVE: an object the lab may take over (adopt=True) carries nothing the lab does not name: a
# namespace no other link, address or route and no process; a bridge no other port, address or route. Otherwise
# it is a conflict, all it carries named.
ADOPTING=()
adoptable() {
  local key=$1 kind ns name k attr where rest id path comm
  local -a extra=()
  IFS=/ read -r kind ns name <<<"$key"
  if [[ $kind == link && $2 != bridge ]]; then return 1; fi # another kind: the step reports it
  for k in "${!HAVE[@]}"; do
    IFS=/ read -r attr where rest <<<"$k"
    if [[ $where != "$ns" ]]; then continue; fi
    if [[ $kind == netns ]]; then
      case $attr in
        link) [[ ${ADOPT_LINKS[$key]} == *" $rest "* ]] || extra+=("link $rest") ;;
        addr) [[ $rest == fe80:* || ${ADOPT_ADDRS[$key]} == *" $rest "* ]] || extra+=("address $rest") ;;
        route4 | route6) [[ ${ADOPT_ROUTES[$key]} == *" $rest "* ]] || extra+=("route $rest") ;;
      esac
    else
      case $attr in
        master) [[ ${HAVE[$k]} != "$name" || ${ADOPT_LINKS[$key]} == *" $rest "* ]] || extra+=("port $rest") ;;
        addr) [[ ${HAVE[$k]%% *} != "$name" || $rest == fe80:* || ${ADOPT_ADDRS[$key]} == *" $rest "* ]] ||
          extra+=("address $rest") ;;
        route4 | route6) [[ ${HAVE[$k]} != *"dev $name" || ${ADOPT_ROUTES[$key]} == *" $rest "* ]] ||
          extra+=("route $rest") ;;
      esac
    fi
  done
  if [[ $kind == netns ]]; then
    id=${HAVE[netnsid/$ns/]:-}
    while read -r k path; do
      if [[ $k == "$id" ]]; then
        path=${path#/proc/} path=${path%%/*}
        comm=$(tr '\0' ' ' <"/proc/$path/cmdline" 2>/dev/null) || comm=
        extra+=("process $path (${comm% })")
      fi
    done < <(stat -L -c '%d:%i %n' /proc/[0-9]*/ns/net 2>/dev/null)
  fi
  if ((${#extra[@]} == 0)); then return 0; fi
  if [[ $kind == netns ]]; then k="netns $ns"; else k="$ns/$name"; fi
  rest=$(printf '%s, ' "${extra[@]}")
  CONFLICTS+=("$k: adopt=True, but it holds what the lab does not name: ${rest%, }; up takes over only what it would make itself: remove those, or name them in the lab")
  return 1
}

# refresh_neighbours: an address this run put on a link it made has a new MAC behind it, and a namespace that
# existed before the run (the host too) may still hold a neighbour entry with the old one: traffic to it would go
# nowhere until that entry expires (tens of seconds). Those entries, for those addresses only, are flushed.
declare -A CREATED=() # links this run made
NEW_ADDRS=()
refresh_neighbours() {
  local ns
  if ((${#NEW_ADDRS[@]} == 0)); then return 0; fi
  local -a lines=("${NEW_ADDRS[@]/#/neigh flush to }")
  local status line
  if [[ -z $PLAN ]]; then printf '%s\n' "${lines[@]}" >"$TMP/neigh"; fi
  for ns in host "${NAMESPACES[@]}"; do
    if [[ -n ${FRESH[$ns]:-} || ($ns != host && -z ${LAB_NS[$ns]:-}) ]]; then continue; fi
    if [[ -n $PLAN ]]; then
      for line in "${lines[@]}"; do typed "$ns" "$line" && PLANNED+=("$TYPED"); done
      continue
    fi
    status=0
    in_ns "$ns" ip -force -batch "$TMP/neigh" >/dev/null 2>&1 || status=$?
    logged "$ns" "$status" "${lines[@]}"
  done
}

# take_sysctl KEY WANT HAVE: this run sets host sysctl KEY (or finds it set): the shared record says so before it
# changes, and a rollback gives it back.
TAKEN=()
take_sysctl() {
  sysctl_take "$1" "$2" "$3"
  TAKEN+=("$1")
}

LEFT_ALONE=() # --plan: the external objects up uses as they are
# forget_link NS LINK: what was read of link LINK no longer holds (it is made again): its settings and addresses.
declare -A REMAKE=()
forget_link() {
  local key attr
  for attr in link state oper mtu mac master hairpin vxlan ifindex iflink peerns; do unset "HAVE[$attr/$1/$2]"; done
  for key in "${!HAVE[@]}"; do
    if [[ $key == addr/"$1"/* && ${HAVE[$key]%% *} == "$2" ]]; then unset "HAVE[$key]"; fi
  done
}

expect() {
  if [[ -n $SKIP ]]; then return 0; fi
  if [[ $MODE == apply ]]; then
    LEFT_ALONE+=("$2${3:+/$3}")
    built "$@"
  fi
  local have
  have=${HAVE[$1/$2/$3]:-absent}
  if [[ $1 == addr ]]; then have=${have% (tentative)}; fi
  if [[ $have != "$4" ]]; then conflict "$@" " (external: the lab uses it as it is)"; fi
}

# conflict ATTR NS OBJ WANT [NOTE]: the object exists with another shape. Its check goes to UNWORDED and a
# placeholder, #N (the N-th check there) and the note, to CONFLICTS: word_conflicts words them all with one judge,
# as verify.sh words a mismatch, before they are reported.
UNWORDED=()
conflict() {
  UNWORDED+=("${1@Q} ${2@Q} ${3@Q} ${4@Q}")
  CONFLICTS+=("#${#UNWORDED[@]}${5:-}")
}

word_conflicts() {
  local i
  REPORT=()
  judge < <(printf '%s\n' "${UNWORDED[@]}")
  for i in "${!CONFLICTS[@]}"; do
    if [[ ${CONFLICTS[i]} =~ ^#([0-9]+)(.*)$ ]]; then
      CONFLICTS[i]="${REPORT[BASH_REMATCH[1] - 1]#FAIL }${BASH_REMATCH[2]}"
    fi
  done
}

# --- batches ----------------------------------------------------------------------------------------------------
# The host's batch runs first (while this script writes the others): it makes the namespaces and every veth pair,
# each end straight in its namespace. Then the namespaces' batches, which need nothing from each other, run in
# NETGEN_JOBS (default 4) small sh loops side by side, most of the time of each being starting processes: a loop
# runs `ip -batch` straight from nsenter inside each of its namespaces (no shell in between, as starting one costs
# as much as ip), then its forwarding entries with `bridge -batch` and its sysctls with a small sh inside it, when
# it has any. Each job J writes done.J: ok, `ip STATUS` (ip failed: err.J has its message; without ip's "Command
# failed" line, ip never ran: the namespace could not be entered), `bridge STATUS` (the same, for bridge) or
# `sysctl K` (the K-th sysctl could not be set), and on failure the stop file,
# so that no other batch starts. Batches run in a session of their own (setsid): a signal to this script's process
# group (Ctrl-C, a dropped ssh session, `kill -9 -PGID`) reaches only this script, which lets them finish and then
# undoes; a batch always ends whole or where ip refused, with the marks of what it made (a killed up's batch too).
# shellcheck disable=SC2016 # expanded by sh when the loop runs
LANE_SH='enter=$1
shift
for job; do
  if [ -e stop ]; then exit 0; fi
  j=${job%%:*} ns=${job#*:}
  case $enter/$ns in
    */host) in= ;;
    nsenter/*) in="nsenter --net=/run/netns/$ns" ;;
    *) in="ip netns exec $ns" ;;
  esac
  : >"started.$j"
  if [ -s "batch.$j" ]; then
    $in ip -batch "batch.$j" 2>"err.$j"
    status=$?
    if [ "$status" != 0 ]; then
      : >stop
      echo "ip $status" >"done.$j"
      exit 0
    fi
  fi
  if [ -s "bridge.$j" ]; then # forwarding entries, once the devices they are on exist
    $in bridge -batch "bridge.$j" 2>>"err.$j"
    status=$?
    if [ "$status" != 0 ]; then
      : >stop
      echo "bridge $status" >"done.$j"
      exit 0
    fi
  fi
  if [ -s "sysctls.$j" ] && ! $in sh set_sysctls.sh "$j" 2>>"err.$j"; then
    : >stop
    if [ ! -s "done.$j" ]; then echo "sysctl 0" >"done.$j"; fi # sh could not start there
    exit 0
  fi
  echo ok >"done.$j"
done'
# shellcheck disable=SC2016 # expanded by sh inside the namespace
SET_SYSCTLS='k=0
while IFS= read -r key && IFS= read -r value && IFS= read -r old; do
  path=/proc/sys
  IFS=.
  for part in $key; do path=$path/$part; done
  unset IFS
  if ! printf "%s\n" "$value" >"$path"; then
    echo "sysctl $k" >"done.$1"
    exit 1
  fi
  k=$((k + 1))
done <"sysctls.$1"'
JOBS=${NETGEN_JOBS:-4}
NJOBS=0
JOB_NS=()
JOB_MARKS=() # how many of a job's lines are marks (up's own, not the lab's changes)
MARKS=0      # in the section's batch
HOST_JOB= # the pid of the job of the host while it runs, and its number
HOST_J=
LAST_J= # the job of the host that runs last
QUEUED=() # jobs of the namespaces, J:NS

# end_section queues the batch of the section that ends, and the next section starts with none.
end_section() {
  queue_batch
  BATCH=() BATCH_UNDO=() FDB=() FDB_UNDO=() SYSCTLS=() MARKS=0
}

# queue_batch queues the section's batch as job J: its lines (ip's, then bridge's), undo lines and sysctls go to
# files. The host's starts at once, and runs while this script writes the namespaces' batches.
queue_batch() {
  local j=$NJOBS i
  if ((${#BATCH[@]} + ${#FDB[@]} + ${#SYSCTLS[@]} == 0)); then return 0; fi
  if [[ -n $PLAN ]]; then # print what the batch would run, as commands
    for ((i = 0; i < ${#BATCH[@]}; i++)); do typed "$SECTION" "${BATCH[i]}" && PLANNED+=("$TYPED"); done
    for ((i = 0; i < ${#FDB[@]}; i++)); do typed "$SECTION" "${FDB[i]}" && PLANNED+=("$TYPED"); done
    for ((i = 0; i < ${#SYSCTLS[@]}; i += 3)); do
      typed "$SECTION" "sysctl -w ${SYSCTLS[i]}=${SYSCTLS[i + 1]}" && PLANNED+=("$TYPED")
    done
    return 0
  fi
  NJOBS=$((NJOBS + 1))
  JOB_NS[j]=$SECTION JOB_MARKS[j]=$MARKS
  if ((${#BATCH[@]})); then printf '%s\n' "${BATCH[@]}"; fi >"$TMP/batch.$j"
  if ((${#FDB[@]})); then printf '%s\n' "${FDB[@]}"; fi >"$TMP/bridge.$j"
  if ((${#BATCH[@]} + ${#FDB[@]})); then printf '%s\n' "${BATCH_UNDO[@]}" "${FDB_UNDO[@]}" >"$TMP/undo.$j"; fi
  if ((${#SYSCTLS[@]})); then printf '%s\n' "${SYSCTLS[@]}"; fi >"$TMP/sysctls.$j"
  if [[ $SECTION != host ]]; then
    QUEUED+=("$j:$SECTION")
    return 0
  fi
  if [[ -n $LAST ]]; then
    LAST_J=$j
    return 0
  fi
  start_host "$j"
}

# start_host J starts the host's job J in the background; await_host waits for it.
start_host() {
  (cd "$TMP" && exec setsid sh lane.sh - "$1:host") &
  HOST_JOB=$! HOST_J=$1
}

# await_host waits for the host's job, if it has not been waited for, and records what it did.
await_host() {
  local pid=$HOST_JOB
  if [[ -z $pid ]]; then return 0; fi
  HOST_JOB=
  wait_for "$pid"
  finish "$HOST_J"
}

# wait_for PID: wait returns early when a trapped signal arrives, so wait again until PID has ended.
wait_for() {
  while :; do
    wait "$1" || true
    kill -0 "$1" 2>/dev/null || break
  done
}

# run_queued runs the namespaces' jobs once the host's has done, records the result of each, in the order of the
# plan, and then runs the host's last batch.
run_queued() {
  await_host
  if ((${#QUEUED[@]})); then run_namespaces; fi
  if [[ -n $LAST_J ]]; then
    start_host "$LAST_J"
    await_host
  fi
}

# run_namespaces runs the namespaces' jobs in NETGEN_JOBS loops, and undoes the run if one failed.
run_namespaces() {
  local j enter=ip
  deal "$JOBS" QUEUED >"$TMP/lanes"
  if [[ -n $NSENTER ]]; then enter=nsenter; fi
  (cd "$TMP" && exec setsid xargs -P "$JOBS" -L 1 -a lanes sh lane.sh "$enter") &
  wait_for $!
  for ((j = 0; j < NJOBS; j++)); do
    if [[ $j != "$HOST_J" && $j != "$LAST_J" ]]; then finish "$j"; fi
  done
  if [[ -n $REFUSED ]]; then
    if [[ -n $INTERRUPTED ]]; then stop_interrupted; fi # a signal ended a batch
    rollback
    exit 1
  fi
}

# finish J records what job J did. ip -batch stops at the first failing line and keeps what it did before it, so
# the lines before that one go to the journal, with the sysctls that were set. A job that never started (a stop
# after a failure) did nothing. The host's failure is undone at once; a namespace's after every job is recorded.
REFUSED=
finish() {
  local j=$1 ns=${JOB_NS[$1]} result="" applied i sys=0 before tool unknown marks
  local -a lines undo sysctls
  if [[ -f $TMP/done.$j ]]; then read -r result <"$TMP/done.$j"; fi
  if [[ -z $result && ! -e $TMP/started.$j ]]; then # it never started: after a failure or a signal, or in error
    if [[ ! -e $TMP/stop ]]; then
      printf '%s: in %s, the batch never started\n' "$SCRIPT" "$ns" >&2
      REFUSED=1
      if [[ $ns == host && -z $ROLLING ]]; then
        rollback
        exit 1
      fi
    fi
    return 0
  fi
  mapfile -t lines <"$TMP/batch.$j"
  before=${#lines[@]} # bridge's lines come after ip's
  mapfile -t -O "$before" lines <"$TMP/bridge.$j"
  mapfile -t sysctls <"$TMP/sysctls.$j"
  applied=${#lines[@]} unknown=''
  case $result in
    ip\ * | bridge\ *)
      tool=${result% *}
      if [[ $tool == ip ]]; then before=0; fi
      applied=$(sed -n 's/^Command failed .*:\([0-9][0-9]*\)$/\1/p' "$TMP/err.$j")
      if [[ -n $applied ]]; then
        applied=$((before + applied - 1))
        if ((applied >= ${#lines[@]})); then applied=${#lines[@]}; fi
        printf '%s: in %s, %s refused: %s\n' "$SCRIPT" "$ns" "$tool" "${lines[applied]:-(after its last line)}" >&2
        grep -v '^Command failed' "$TMP/err.$j" | sed 's/^/  /' >&2 || true
      elif ((${result#* } > 128 && ${result#* } < 160)); then # any of its lines may have been applied: all are undone
        applied=${#lines[@]} unknown=1
        printf '%s: in %s, %s was ended by signal %s\n' "$SCRIPT" "$ns" "$tool" "$((${result#* } - 128))" >&2
      elif [[ $tool == bridge ]]; then
        applied=$before
        printf '%s: in %s, bridge (iproute2) could not run its batch\n' "$SCRIPT" "$ns" >&2
        sed 's/^/  /' "$TMP/err.$j" >&2
      elif [[ $ns != host ]] && grep -q '^nsenter: \|^Cannot open network namespace' "$TMP/err.$j"; then
        applied=0
        printf '%s: in %s, the batch did not run: the namespace could not be entered\n' "$SCRIPT" "$ns" >&2
        sed 's/^/  /' "$TMP/err.$j" >&2
      else # ip failed without naming a line (after its last one, say): any of them may have been applied
        applied=${#lines[@]} unknown=1
        printf '%s: in %s, ip failed (exit %s) without saying where\n' "$SCRIPT" "$ns" "${result#* }" >&2
        sed 's/^/  /' "$TMP/err.$j" >&2
      fi
      ;;
    sysctl*)
      sys=$((${result#sysctl } * 3))
      printf '%s: in %s, could not set sysctl %s to %s\n' "$SCRIPT" "$ns" "${sysctls[sys]}" "${sysctls[sys + 1]}" >&2
      sed 's/^/  /' "$TMP/err.$j" >&2
      ;;
    ok) sys=$((${#sysctls[@]} / 3 * 3)) ;;
    *) # its loop ended before saying how the batch went: what the batch may have done is undone
      unknown=1
      printf '%s: in %s, the batch did not report how it went\n' "$SCRIPT" "$ns" >&2
      ;;
  esac
  log_job "$ns" "$result" "$applied" "$sys" lines sysctls
  if ((applied)); then mapfile -t undo <"$TMP/undo.$j"; fi
  for ((i = 0; i < applied; i++)); do
    if [[ -n ${undo[i]:-} ]]; then
      JOURNAL_NS+=("${undo[i]%% *}")
      JOURNAL_UNDO+=("${unknown:+?}${undo[i]#* }")
    fi
  done
  marks=${JOB_MARKS[j]}
  if ((applied < ${#lines[@]})); then # marks among the lines applied
    marks=0
    for ((i = 0; i < applied; i++)); do
      if [[ ${lines[i]} == "netns set "* || ${lines[i]} == "link set dev "*" group $GROUP" ]]; then marks=$((marks + 1)); fi
    done
  fi
  applied=$((applied - marks)) # from here: the lab's changes
  CHANGES=$((CHANGES + applied + sys / 3))
  for ((i = 0; i < sys; i += 3)); do
    # a namespace this run made takes its sysctls with it; the host's go back through their shared record
    if [[ $ns != host && ${sysctls[i + 2]} != absent ]]; then
      JOURNAL_NS+=("$ns")
      JOURNAL_UNDO+=("sysctl ${sysctls[i]} ${sysctls[i + 2]}")
    fi
  done
  if [[ $result == ok ]]; then
    n_words "$((applied + sys / 3))" change
    say "$ns: $N_WORDS"
    return 0
  fi
  REFUSED=1
  if [[ $ns == host && -z $ROLLING ]]; then # (while undoing, what the job did is in the journal: the undo goes on)
    if [[ -n $INTERRUPTED ]]; then stop_interrupted; fi # a signal ended the batch
    rollback
    exit 1
  fi
}

# log_job NS RESULT APPLIED SYS LINES SYSCTLS: the log's lines for a finished job (LINES and SYSCTLS: array names).
log_job() {
  local ns=$1 result=$2 applied=$3 sys=$4 i status
  local -n batch=$5 keys=$6
  case $result in
    ok | ip\ * | bridge\ * | sysctl*)
      status=${result#* }
      if ((applied)); then logged "$ns" 0 "${batch[@]:0:applied}"; fi
      if ((applied < ${#batch[@]})); then
        if [[ $result == ip\ * || $result == bridge\ * ]]; then logged "$ns" "$status" "${batch[applied]}"; fi
        if ((applied + 1 < ${#batch[@]})); then logged "$ns" "not run" "${batch[@]:applied+1}"; fi
      fi
      ;;
    *) logged "$ns" "unknown (the batch did not report)" "${batch[@]}" ;;
  esac
  for ((i = 0; i < ${#keys[@]}; i += 3)); do
    if ((i < sys)); then status=0; elif [[ $result == sysctl* ]] && ((i == sys)); then status=1; else status="not run"; fi
    logged "$ns" "$status" "sysctl -w ${keys[i]}=${keys[i + 1]}"
  done
}

# rollback undoes the journal newest first, one batch per run of entries in the same namespace.
ROLLING=
rollback() {
  local i ns="" n key value tool="" next
  local -a lines=()
  trap '' HUP INT QUIT TERM
  if [[ -n $ROLLING ]]; then return 0; fi # a failure found while undoing: the undo that runs goes on
  APPLYING='' ROLLING=1
  await_host   # what it did is undone too
  quiet_scratch # and what a batch whose loop was ended may still be doing
  n=${#JOURNAL_UNDO[@]}
  if ((n == 0)); then
    say "nothing to undo: this run had not changed the host" >&2
    give_back
    return 0
  fi
  n_words "$n" change
  say "undoing the $N_WORDS this run made" >&2
  prove_unknown
  end_made_processes
  for ((i = n - 1; i >= -1; i--)); do
    next=ip
    if ((i >= 0)) && [[ -z ${JOURNAL_UNDO[i]} ]]; then continue; fi # an undo that could not be proven safe
    if ((i >= 0)) && [[ ${JOURNAL_UNDO[i]} == fdb\ * ]]; then next=bridge; fi
    if ((i < 0)) || [[ ${JOURNAL_NS[i]} != "$ns" || $next != "$tool" || ${JOURNAL_UNDO[i]} == sysctl\ * ||
      ${JOURNAL_UNDO[i]} == service\ * || ${JOURNAL_UNDO[i]} == nft\ * ]]; then
      if ((${#lines[@]})); then undo_batch "$ns" "$tool" "${lines[@]}"; fi
      lines=()
    fi
    if ((i < 0)); then break; fi
    tool=$next
    ns=${JOURNAL_NS[i]}
    if [[ ${JOURNAL_UNDO[i]} == sysctl\ * ]]; then
      read -r _ key value <<<"${JOURNAL_UNDO[i]}"
      printf '  undo in %s: %s\n' "$ns" "${JOURNAL_UNDO[i]}" >&2
      if set_sysctl "$ns" "$key" "$value"; then
        logged "$ns" 0 "sysctl -w $key=$value"
      else
        logged "$ns" 1 "sysctl -w $key=$value"
        say "could not put sysctl $key back to $value" >&2
      fi
    elif [[ ${JOURNAL_UNDO[i]} == service\ * ]]; then
      printf '  undo: stop %s\n' "${JOURNAL_UNDO[i]}" >&2
      key=${JOURNAL_UNDO[i]#service }
      stop_service "$key"
      key=${key#service/}
      stop_marked "${key%%/*}" "${key#*/}"
    elif [[ ${JOURNAL_UNDO[i]} == nft\ * ]]; then
      printf '  undo in %s: %s\n' "$ns" "${JOURNAL_UNDO[i]}" >&2
      if nft delete table inet "$NFT_TABLE" >&2; then
        logged host 0 "nft delete table inet $NFT_TABLE"
      else
        logged host 1 "nft delete table inet $NFT_TABLE"
        say "could not delete the nftables table $NFT_TABLE" >&2
      fi
    else
      lines+=("${JOURNAL_UNDO[i]}")
    fi
  done
  give_back
}

# give_back: after a rollback, the host sysctls this run took go back (when it changed them and nobody else has),
# what it adopted is no longer the lab's, and the record keeps only what still exists.
give_back() {
  local key
  for key in "${TAKEN[@]}"; do
    if line=$(sysctl_give "$key") && [[ -n $line ]]; then
      printf '  undo in %s\n' "$line" >&2
      if [[ $line == *" back to "* ]]; then logged host 0 "sysctl -w $key=${line##* back to }"; fi
    fi
  done
  TAKEN=()
  for key in "${ADOPTING[@]}"; do unset -v 'MADE[$key]'; done
  if read_marks; then
    prune_record
  else
    say "could not read the host again: the record keeps this run's lines (each claims only what carries its mark)" >&2
  fi
  save_record || true
}

# prove_unknown: the undo lines of a batch that ended without saying how far it went (`?LINE`) are run only where
# they cannot touch what this run did not make: a deletion only of a namespace or link that carries this run's
# mark (another tool may have made it under that name while the batch failed).
prove_unknown() {
  local i line name proven read=''
  for i in "${!JOURNAL_UNDO[@]}"; do
    line=${JOURNAL_UNDO[i]}
    if [[ $line != \?* ]]; then continue; fi
    line=${line#\?}
    if [[ $line =~ ^(netns\ del|link\ del\ dev)\ ([^ ]+)$ ]]; then
      if [[ -z $read ]]; then
        read=failed
        if read_marks; then read=ok; fi
      fi
      name=${BASH_REMATCH[2]} proven=''
      if [[ $read == ok && $line == netns* ]] && made_here netns "$name"; then proven=1; fi
      if [[ $read == ok && $line == link* ]] && made_here link "${JOURNAL_NS[i]}" "$name"; then proven=1; fi
      if [[ -z $proven ]]; then
        printf '  left in %s: %s (not proven to be this run'"'"'s)\n' "${JOURNAL_NS[i]}" "$line" >&2
        line=''
      fi
    fi
    JOURNAL_UNDO[i]=$line
  done
}

# end_made_processes: before the namespaces this run made are deleted, whatever runs in them is ended (a service's
# child that left its process group would otherwise keep the namespace alive, and no later run would find it).
end_made_processes() {
  local i ns
  local -a namespaces=()
  for i in "${!JOURNAL_UNDO[@]}"; do
    if [[ ${JOURNAL_NS[i]} == host && ${JOURNAL_UNDO[i]} == "netns del "* ]]; then namespaces+=("${JOURNAL_UNDO[i]#netns del }"); fi
  done
  if ((${#namespaces[@]} == 0)); then return 0; fi
  netns_ids "${namespaces[@]}"
  SELF_NS=$(stat -L -c '%d:%i' /proc/$$/ns/net)
  DOOMED_ID=()
  for ns in "${namespaces[@]}"; do
    if [[ -n ${NETNS_ID[$ns]:-} ]]; then DOOMED_ID[$ns]=${NETNS_ID[$ns]}; fi
  done
  end_processes
}

# undo_batch NS TOOL LINE...: the undo lines, run by one `ip -batch` or `bridge -batch` (TOOL) in namespace NS, each
# tried whatever the others do (-force).
undo_batch() {
  local ns=$1 tool=$2
  shift 2
  local status=0
  printf '%s\n' "${@/#/  undo in $ns: }" >&2
  printf '%s\n' "$@" | in_ns "$ns" "$tool" -force -batch - >&2 || status=$?
  logged "$ns" "$status (undo batch)" "$@"
  if ((status)); then say "some undo commands failed (above)" >&2; fi
}

# Signals: HUP (a dropped ssh session), INT (Ctrl-C), QUIT and TERM, sent to this script or to its whole process
# group. Before any change the script just stops; once it changes the host it lets the running batches finish,
# starts no other, undoes what this run made and exits 128 + the signal's number. Any other failure once changes
# have begun (a command failing under `set -e`) is undone by the exit trap the same way.
APPLYING=
declare -A SIGNUM=([HUP]=1 [INT]=2 [QUIT]=3 [TERM]=15)
on_signal() {
  if [[ -z $APPLYING ]]; then
    printf '%s: stopped by SIG%s; nothing was changed\n' "$SCRIPT" "$1" >&2
    exit $((128 + SIGNUM[$1]))
  fi
  INTERRUPTED=$1
  : >"$TMP/stop" # no batch starts after this one
}
stop_interrupted() {
  if [[ -n $ROLLING ]]; then return 0; fi
  printf '%s: interrupted by SIG%s\n' "$SCRIPT" "$INTERRUPTED" >&2
  rollback
  exit $((128 + SIGNUM[$INTERRUPTED]))
}
on_exit() {
  local code=$?
  trap '' HUP INT QUIT TERM
  if [[ -n $APPLYING ]]; then
    say "stopped (exit $code) before the lab was complete" >&2
    rollback
    if ((code == 0)); then code=1; fi
  fi
  cleanup
  exit "$code"
}

# firewall: after the host's batch, the lab's nftables table. A table of that name that is not exactly the lab's
# is a conflict, reported before anything changes (up never edits a table it did not make: run down.sh, or delete
# it); a missing one is made whole by one `nft -f`, a single transaction, and undone on rollback by deleting it.
firewall() {
  local i j line
  end_section # the table comes after the host's batch
  if [[ -n $NFT_PRESENT ]]; then
    if [[ $MODE == check ]]; then
      REPORT=()
      firewall_checks
      for line in "${REPORT[@]}"; do
        if [[ $line == FAIL* ]]; then CONFLICTS+=("${line#FAIL } (a table of the name of the lab, not as the lab makes it)"); fi
      done
    fi
    return 0
  fi
  if [[ $MODE == check ]]; then return 0; fi
  if [[ -z $PLAN ]]; then await_host; fi
  {
    printf 'table inet %s {\n' "$NFT_TABLE"
    for ((i = 0; i < ${#NFT_CHAINS[@]}; i += 2)); do
      printf '\tchain %s {\n\t\t%s\n' "${NFT_CHAINS[i]}" "${NFT_CHAINS[i + 1]}"
      for ((j = 0; j < ${#NFT_RULES[@]}; j += 2)); do
        if [[ ${NFT_RULES[j]} == "${NFT_CHAINS[i]}" ]]; then printf '\t\t%s\n' "${NFT_RULES[j + 1]}"; fi
      done
      printf '\t}\n'
    done
    printf '}\n'
  } >"$TMP/nft"
  if [[ -n $PLAN ]]; then
    PLANNED+=("nft -f - <<'EOF'" "$(<"$TMP/nft")" "EOF")
    return 0
  fi
  if ! nft -f "$TMP/nft" 2>"$TMP/nft.err"; then
    logged host 1 "nft -f - (table inet $NFT_TABLE)"
    say "in host, nft refused the table $NFT_TABLE (below); this run is undone. Check that the kernel has nftables NAT and fib (modprobe nft_chain_nat nft_fib_inet):" >&2
    sed 's/^/  /' "$TMP/nft.err" >&2
    rollback
    exit 1
  fi
  logged host 0 "nft -f - (table inet $NFT_TABLE)"
  JOURNAL_NS+=(host)
  JOURNAL_UNDO+=("nft delete table inet $NFT_TABLE")
  CHANGES=$((CHANGES + 1))
  n_words "$((${#NFT_RULES[@]} / 2))" rule
  say "host: nftables table inet $NFT_TABLE made, $N_WORDS"
}

# plan_service NS NAME COMMAND...: --plan: the command that would start it, unless it runs.
plan_service() {
  service_state "${MADE[service/$1/$2]:-}" "$1" "$2"
  if [[ $SERVICE_STATE == running ]]; then return 0; fi
  local ns=$1 name=$2
  shift 2
  PLANNED+=("ip netns exec $ns setsid ${*@Q} & # service $name")
}

# start_service NS NAME COMMAND...: after the namespaces' batches, COMMAND runs detached in namespace NS (see
# services), unless the lab's process of it runs there (up converges). A background subshell that execs: its pid
# is the service's (nsenter and setsid exec; setsid forks only a process group leader, which a child of a script
# without job control never is), known here at once, and its parent the sandbox's or machine's init once this
# script ends. Its journal entry comes first, so a rollback stops it (by its mark, if a signal came before its
# pid was recorded); the lab's lock fd is closed for it.
start_service() {
  local ns=$1 name=$2 key=service/$1/$2 log=$STATE_DIR/$LAB.$1.$2.log pid
  local -a enter=(ip netns exec "$ns")
  shift 2
  if [[ -n $NSENTER ]]; then enter=(nsenter --net="/run/netns/$ns"); fi
  service_state "${MADE[$key]:-}" "$ns" "$name"
  if [[ $SERVICE_STATE == running ]]; then return 0; fi
  if [[ $SERVICE_STATE != stopped ]]; then # a process of the lab, left in a namespace that is no longer NS
    say "$ns: service $name runs as $SERVICE_STATE; stopping it to start it again" >&2
    stop_service "$key"
  fi
  JOURNAL_NS+=(host)
  JOURNAL_UNDO+=("service $key")
  CHANGES=$((CHANGES + 1))
  (cd / && NETGEN_SERVICE=$MARK:$ns/$name exec "${enter[@]}" setsid "$@" </dev/null >>"$log" 2>&1 {LOCK_FD}>&-) &
  pid=$!
  disown "$pid" # not waited for: it outlives this script
  if proc_id "$pid"; then MADE[$key]=$PROC_ID; fi
  save_record || die 1 "could not record service $name of $ns"
  logged "$ns" "started, pid $pid" "ip netns exec $ns setsid ${*@Q} & # service $name"
  say "$ns: service $name started (pid $pid, output in $log)"
}

# What was built is checked with one more, light, read: that the namespaces exist, the lab's services run, the
# carrier of the host's links and the host's sysctls (see `built`). Elsewhere `ip`'s exit status is the check,
# which costs no process per namespace; verify.sh reads everything. Namespaces with IPv6 addresses are read until
# duplicate address detection has finished, so that up ends with addresses that work. A lab that does not check
# out is undone like any other failure.
observe_built() {
  local ns name key out
  local -a lines keys
  HAVE=()
  if out=$(link_ids host); then
    mapfile -t lines <<<"$out"
    for name in "${lines[@]}"; do HAVE[oper/host/${name%% *}]=${name##* }; done
  else
    HAVE[read/host/]=failed # checked, and read again
  fi
  for ns in "${NAMESPACES[@]}"; do
    if [[ -e /run/netns/$ns ]]; then HAVE[netns/$ns/]=present; fi
  done
  if ((${#DAD[@]})); then read_namespaces "${!DAD[@]}"; fi
  read -ra keys <<<"${SYSCTL_KEYS[host]:-}"
  for key in "${keys[@]}"; do
    if [[ -r /proc/sys/${key//.//} ]]; then HAVE[sysctl/host/$key]=$(<"/proc/sys/${key//.//}"); fi
  done
}
built_checks() {
  local key ns have settles
  if [[ -n ${HAVE[read/host/]:-} ]]; then result "host links" read "could not be read" 1; fi
  for key in "${!HAVE[@]}"; do # addresses still in duplicate address detection, or that failed it
    if [[ $key == addr/* && ${HAVE[$key]} =~ ^([^ ]+)\ \((tentative|dadfailed)\)$ ]]; then
      ns=${key#addr/} ns=${ns%%/*} have=${BASH_REMATCH[2]} settles=0
      if [[ $have == tentative ]]; then settles=1; fi
      result "$ns/${BASH_REMATCH[1]} address ${key#addr/"$ns"/}" present "$have" "$settles"
    fi
  done
  lab_services # each runs, in its namespace
  services_answer
  judge < <(
    for ns in "${NAMESPACES[@]}"; do printf 'netns %s %s present\n' "${ns@Q}" "''"; done
    for key in "${BUILT[@]}"; do printf '%s\n' "$key"; done
    for key in "${!BUILT_CARRIER[@]}"; do printf 'oper host %s up\n' "${key@Q}"; done
  )
}

# up_main: check everything, then apply; --plan stops after printing what apply would run.
up_main() {
  local arg ns key
  for arg; do
    case $arg in
      --plan) PLAN=1 ;;
      -h | --help)
        cat <<'USAGE'
usage: up.sh [--plan]
  (no option)  build the lab, or complete a partly built one
  --plan       read the live state and print each command up.sh would run now, every conflict and what it would
               leave as it is; change nothing (exit 0, or 1 when up would refuse)
USAGE
        exit 0
        ;;
      *) die 2 "unknown option: $arg (up.sh takes --plan)" ;;
    esac
  done
  trap 'on_signal HUP' HUP
  trap 'on_signal INT' INT
  trap 'on_signal QUIT' QUIT
  trap 'on_signal TERM' TERM
  preflight
  if [[ -n $PLAN ]]; then
    lock shared # it changes nothing, but must not read a lab that another run is changing
    trap cleanup EXIT
    scratch
  else
    lock
    trap on_exit EXIT
    scratch sweep
  fi
  declared_services
  load_record
  for ns in "${NAMESPACES[@]}"; do LAB_NS[$ns]=1; done
  for ns in "${EXTERNAL_NS[@]}"; do unset -v 'LAB_NS[$ns]'; done

  observe
  prune_record # lines of what is gone, or now another's, claim nothing
  RECORDED_INSTANCE=$INSTANCE
  if [[ -z $INSTANCE ]]; then new_instance; fi
  for ns in "${NAMESPACES[@]}"; do
    if [[ -z ${HAVE[netns/$ns/]:-} || ${HAVE[netns/$ns/]} == "a stale file in /run/netns" ]]; then FRESH[$ns]=1; fi
  done

  run_steps # MODE=check
  if ((${#UNWORDED[@]})); then word_conflicts; fi
  if ((${#CONFLICTS[@]})); then
    printf '%s\n' "${CONFLICTS[@]/#/$SCRIPT: }" >&2
    n_words "${#CONFLICTS[@]}" "object is" "objects are"
    if [[ -n $PLAN ]]; then die 1 "up would refuse and change nothing: $N_WORDS not as the lab needs them (above)"; fi
    die 1 "nothing was changed: $N_WORDS not as the lab needs them (above); remove or fix them, or change the lab"
  fi
  if [[ -n $PLAN ]]; then
    MODE=apply
    run_steps
    refresh_neighbours
    SERVICE_DO=plan_service
    lab_services
    if [[ -z ${RECORDED_INSTANCE:-} ]]; then
      echo "# the marks of what up makes (the id of each new namespace, the link group $GROUP) are drawn by each run"
    fi
    for key in "${ADOPTING[@]}"; do echo "# would take over (adopt=True): $key"; done
    for key in "${LEFT_ALONE[@]}"; do echo "# would use as it is (external): $key"; done
    if ((${#PLANNED[@]} == 0)); then
      say "nothing to do: lab $LAB is up as built (--plan: nothing was changed)"
      exit 0
    fi
    printf '%s\n' "${PLANNED[@]}"
    n_words "${#PLANNED[@]}" command
    say "$N_WORDS to run (--plan: nothing was changed)"
    exit 0
  fi

  reserve_room
  for key in "${!MAKING[@]}"; do MADE[$key]=${MAKING[$key]}; done
  save_record || die 2 "could not write the record $RECORD; nothing was changed"
  APPLYING=1 # from here a signal or a failure undoes this run, and takes its lines out of the record
  if ((${#ADOPTING[@]})); then say "taking over (adopt=True): ${ADOPTING[*]}"; fi
  MODE=apply
  printf '%s\n' "$LANE_SH" >"$TMP/lane.sh"
  printf '%s\n' "$SET_SYSCTLS" >"$TMP/set_sysctls.sh"
  run_steps
  run_queued
  if [[ -n $INTERRUPTED ]]; then stop_interrupted; fi
  refresh_neighbours
  SERVICE_DO=start_service
  lab_services
  if [[ -n $INTERRUPTED ]]; then stop_interrupted; fi
  SERVICE_DO=check_service

  run_checks built_checks observe_built
  if [[ -n $INTERRUPTED ]]; then stop_interrupted; fi
  if ((FAILED)); then
    printf '%s\n' "${REPORT[@]}" | grep '^FAIL' >&2
    service_logs
    n_words "$FAILED" check
    say "$N_WORDS failed after building the lab" >&2
    rollback
    exit 1
  fi
  APPLYING=
  if ((CHANGES == 0)); then
    say "lab $LAB is already up; nothing changed"
  else
    n_words "$CHANGES" change
    say "lab $LAB is up ($N_WORDS)"
  fi
}

# --- down.sh: removing what up made ----------------------------------------------------------------------------
# The lab's part lists what down removes in lab_teardown, newest first: `doom` for each namespace the lab makes,
# `remove` for each link it makes in the host, `goes_with` for each host veth whose peer is in a lab namespace.
# down.sh runs it twice: for the namespaces (TEARDOWN=namespaces), which are deleted in the background, and then,
# once the host's reading is parsed, for the host's links (TEARDOWN=links).
TEARDOWN=
FORCE=
SELF_NS=   # the namespace down.sh runs in: never deleted
REMOVED=0
UNREMOVED=0
LEFT=()
UNLINK=()  # the host links and routes to remove
declare -A DOOMED=() # lab namespaces being deleted, each with its line of `ip -batch`
VANISH=() # host veth ends that go with them
NETNS_JOB= # the pid of the batch that deletes them

# doom NS LINE: namespace NS, if it exists and carries this lab's mark (the id its record line gives), is deleted
# by LINE (for `ip -batch`); with --force, whatever carries the name. The namespace down runs in is never deleted. A
# file of that name that is no namespace (left by an `ip netns add` that was killed) goes too when the record names
# the namespace.
declare -A DOOMED_ID=() # device:inode of each doomed namespace
declare -A GONE=()      # the record's lines (keys) of what this run removes
doom() {
  local id
  if [[ $TEARDOWN != namespaces ]]; then return 0; fi
  KNOWN[netns/$1/]=1
  if [[ ! -e /run/netns/$1 ]]; then return 0; fi
  id=${NETNS_ID[$1]:-}
  if [[ -z $id ]]; then # a file, not a namespace
    if [[ -n $FORCE || -n ${MADE[netns/$1/]:-} ]]; then STALE_FILES+=("$2"); else LEFT+=("netns $1: left alone, not made by this lab"); fi
  elif [[ $id == "$SELF_NS" ]]; then
    LEFT+=("netns $1: left alone, it is the namespace down.sh runs in")
  elif [[ -n $FORCE ]] || claims "netns/$1/"; then
    DOOMED[$1]=$2
    DOOMED_ID[$1]=$id
    GONE[netns/$1/]=1
  else
    LEFT+=("netns $1: left alone, not made by this lab")
  fi
}
STALE_FILES=()

# ours ATTR NS OBJ: the live object carries the mark of its line in the record (or --force).
ours() {
  KNOWN[$1/$2/$3]=1
  [[ -n $FORCE ]] || { [[ -n ${MADE[$1/$2/$3]:-} ]] && claims "$1/$2/$3"; }
}

# remove ATTR NS OBJ KIND LINE: queue LINE (for `ip -batch`) when the object exists as KIND and is the lab's. A
# route's KIND is its gateway and device; its LINE is taken with netgen's protocol.
remove() {
  local attr=$1 ns=$2 obj=$3 kind=$4 have
  if [[ $TEARDOWN != links ]]; then return 0; fi
  KNOWN[$attr/$ns/$obj]=1
  have=${HAVE[$attr/$ns/$obj]:-absent}
  if [[ $have == absent ]]; then return 0; fi
  if [[ $attr == route[46] && $have != "$kind" ]]; then
    LEFT+=("$ns route $obj: left alone, $have where the lab makes $kind")
  elif [[ $attr == link && $have != "$kind" ]]; then
    LEFT+=("$ns/$obj: left alone, a $have where the lab makes a $kind")
  elif ! ours "$attr" "$ns" "$obj"; then
    if [[ $attr == link ]]; then LEFT+=("$ns/$obj: left alone, not made by this lab"); else LEFT+=("$ns route $obj: left alone, not made by this lab"); fi
  elif [[ $attr == route[46] ]]; then
    UNLINK+=("$5${FORCE:- proto $ROUTE_PROTO}")
    GONE[$attr/$ns/$obj]=1
  else
    UNLINK+=("$5")
    GONE[$attr/$ns/$obj]=1
  fi
}

# goes_with NS LINK: the host's veth LINK goes when namespace NS is deleted, if its peer is there; a veth of that
# name with its peer elsewhere is the lab's too, and is deleted.
goes_with() {
  local ns=$1 obj=$2
  if [[ $TEARDOWN != links ]]; then return 0; fi
  KNOWN[link/host/$obj]=1
  case ${HAVE[link/host/$obj]:-absent} in
    absent) ;;
    veth)
      if ! ours link host "$obj"; then
        LEFT+=("host/$obj: left alone, not made by this lab")
      elif [[ ${HAVE[peerns/host/$obj]} == "$ns" && -n ${DOOMED[$ns]:-} ]]; then
        VANISH+=("$obj")
        REMOVED=$((REMOVED + 1))
        GONE[link/host/$obj]=1
      else
        UNLINK+=("link del dev $obj")
        GONE[link/host/$obj]=1
      fi
      ;;
    *) LEFT+=("host/$obj: left alone, a ${HAVE[link/host/$obj]} where the lab makes a veth") ;;
  esac
}

# end_processes: TERM, then after two seconds KILL, whatever still runs inside the namespaces being deleted,
# matched by device and inode (a name proves nothing: `ip netns attach NAME 1` names the host's own namespace), and
# never in the namespace down runs in. One stat lists the namespace of every process, where `ip netns pids` would
# scan every process once per namespace.
end_processes() {
  local -a pids
  local -A doomed=() told=()
  local i ns id path pid comm
  for ns in "${!DOOMED_ID[@]}"; do doomed[${DOOMED_ID[$ns]}]=$ns; done
  for ((i = 0; i < 21; i++)); do
    pids=()
    while read -r id path; do
      if [[ -n ${doomed[$id]:-} && $id != "$SELF_NS" ]]; then
        pid=${path#/proc/} pid=${pid%%/*}
        pids+=("$pid")
        if [[ -z ${told[$pid]:-} ]]; then
          told[$pid]=1
          if [[ -n $PLAN ]] && printf '%s\n' "${MADE[@]}" | grep -q "^$pid:"; then continue; fi # a service: above
          comm=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || comm=
          if [[ -n $PLAN ]]; then
            PLANNED+=("kill -TERM $pid # in ${doomed[$id]}: ${comm% }")
          else
            say "${doomed[$id]}: ending pid $pid (${comm% })"
            logged "${doomed[$id]}" 0 "kill -TERM $pid # ${comm% }"
          fi
        fi
      fi
    done < <(stat -L -c '%d:%i %n' /proc/[0-9]*/ns/net 2>/dev/null)
    if ((${#pids[@]} == 0)) || [[ -n $PLAN ]]; then return 0; fi
    if ((i < 20)); then kill -TERM "${pids[@]}" 2>/dev/null || true; else kill -KILL "${pids[@]}" 2>/dev/null || true; fi
    sleep 0.1
  done
}

# delete_namespaces ends what runs in the doomed namespaces, then deletes them in one batch, in the background.
delete_namespaces() {
  local ns
  if ((${#STALE_FILES[@]})); then
    if [[ -n $PLAN ]]; then
      for ns in "${STALE_FILES[@]}"; do typed host "$ns" && PLANNED+=("$TYPED # a file left by a killed ip netns add"); done
    else
      printf '%s\n' "${STALE_FILES[@]}" | ip -force -batch - 2>/dev/null || true
      logged host 0 "${STALE_FILES[@]}"
      REMOVED=$((REMOVED + ${#STALE_FILES[@]}))
    fi
  fi
  if ((${#DOOMED[@]} == 0)); then return 0; fi
  end_processes
  if [[ -n $PLAN ]]; then
    for ns in "${DOOMED[@]}"; do typed host "$ns" && PLANNED+=("$TYPED"); done
    return 0
  fi
  # -force: try every removal even if one fails, then report (a pipe, not a file: down needs no room)
  printf '%s\n' "${DOOMED[@]}" | ip -force -batch - &
  NETNS_JOB=$!
}

# remove_links removes the host links and routes in UNLINK once the namespaces are deleted, and says how it went.
remove_links() {
  local failed='' status line err
  if [[ -n $PLAN ]]; then
    for line in "${UNLINK[@]}"; do typed host "$line" && PLANNED+=("$TYPED"); done
    return 0
  fi
  if [[ -n $NETNS_JOB ]]; then
    n_words "${#DOOMED[@]}" namespace
    status=0
    wait "$NETNS_JOB" || status=$?
    logged host "$status" "${DOOMED[@]}"
    if ((status == 0)); then say "host: removed $N_WORDS"; else failed=1; fi
    REMOVED=$((REMOVED + ${#DOOMED[@]}))
  fi
  if ((${#UNLINK[@]})); then
    local routes=0 what=''
    for line in "${UNLINK[@]}"; do if [[ $line == route\ * ]]; then routes=$((routes + 1)); fi; done
    if ((${#UNLINK[@]} > routes)); then n_words "$((${#UNLINK[@]} - routes))" link && what=$N_WORDS; fi
    if ((routes)); then n_words "$routes" route && what+="${what:+, }$N_WORDS"; fi
    status=0
    err=$({ printf '%s\n' "${UNLINK[@]}" | ip -force -batch - >/dev/null; } 2>&1) || status=$? # no file: no room needed
    logged host "$status" "${UNLINK[@]}"
    if ((status != 0)) && still_there; then
      printf '%s\n' "$err" >&2
      failed=1
    else # what ip could not find had gone by itself (a veth with its namespace, being deleted when down began)
      say "host: removed $what"
    fi
    REMOVED=$((REMOVED + ${#UNLINK[@]}))
  fi
  if [[ -n $failed ]]; then die 1 "ip could not remove everything (above); run down.sh again"; fi
}

# still_there: a link or route down meant to remove is still in the host (read again).
still_there() {
  local key reading
  reading=$(printf '%s\n' "$NAMED_READING" | ip -j -d -batch - 2>/dev/null) || return 0
  HAVE=()
  parse host <(printf '%s\n' "$reading")
  for key in "${!GONE[@]}"; do
    if [[ $key != netns/* && -n ${HAVE[$key]:-} ]]; then return 0; fi
  done
  return 1
}

# wait_vanished: until the host shows none of the veth ends that go with the deleted namespaces, for
# NETGEN_DOWN_WAIT seconds (default 30).
wait_vanished() {
  local deadline=$((SECONDS + ${NETGEN_DOWN_WAIT:-30})) line obj
  local -a left
  local -A shown
  while ((${#VANISH[@]})); do
    shown=()
    while IFS= read -r line; do
      line=${line%% *}
      shown[${line%@*}]=1
    done < <(ip -br link show type veth)
    left=()
    for obj in "${VANISH[@]}"; do
      if [[ -n ${shown[$obj]:-} ]]; then left+=("$obj"); fi
    done
    VANISH=("${left[@]}")
    if ((${#VANISH[@]} == 0)); then break; fi
    if ((SECONDS >= deadline)); then
      n_words "${#VANISH[@]}" veth
      LEFT+=("$N_WORDS still in the host after the namespaces were deleted: ${VANISH[*]:0:8}")
      UNREMOVED=1
      break
    fi
    sleep 0.05
  done
}

# remove_firewall deletes the lab's nftables table first, so that nothing is forwarded to what goes next.
remove_firewall() {
  if ! command -v nft >/dev/null; then
    say "nft is not installed, so the nftables table inet $NFT_TABLE, if there is one, cannot be read or deleted: left as it is" >&2
    return 0
  fi
  if nft list table inet "$NFT_TABLE" >/dev/null 2>&1; then
    if [[ -n $PLAN ]]; then
      PLANNED+=("nft delete table inet $NFT_TABLE")
      return 0
    fi
    if ! nft delete table inet "$NFT_TABLE"; then
      logged host 1 "nft delete table inet $NFT_TABLE"
      die 1 "nft could not delete the table inet $NFT_TABLE (above); run down.sh again"
    fi
    logged host 0 "nft delete table inet $NFT_TABLE"
    say "host: nftables table inet $NFT_TABLE deleted"
    REMOVED=$((REMOVED + 1))
  fi
}

# stop_services stops the services up started, first, each only while it is the lab's (marked_service): a pid
# reused by another process is never signalled. Processes left in the namespaces are ended with them
# (end_processes).
stop_services() {
  local key ns name
  for key in "${!MADE[@]}"; do
    if [[ $key != service/* ]]; then continue; fi
    IFS=/ read -r _ ns name <<<"$key"
    if ! marked_service "${MADE[$key]}" "$ns" "$name"; then # ended, or its pid now another process's
      if [[ -z $PLAN ]]; then unset -v 'MADE[$key]'; fi
      continue
    fi
    if [[ -n $PLAN ]]; then
      PLANNED+=("kill -TERM -${MADE[$key]%%:*} # service $name in $ns, and its process group")
      continue
    fi
    say "$ns: stopping service $name (pid ${MADE[$key]%%:*})"
    logged "$ns" 0 "kill -TERM -${MADE[$key]%%:*} # service $name, and its process group"
    stop_service "$key"
    REMOVED=$((REMOVED + 1))
  done
}

# down_main: stop the services, delete the nftables table, the namespaces (in the background) and then the host's
# links, in that order; put the host's sysctls back; say what was left and why.
declare -A KNOWN=() # the record's keys that lab_teardown names
down_main() {
  local arg key line ids reading lo ns unrestored=0
  local -a host_sysctls
  for arg; do
    case $arg in
      --force) FORCE=1 ;;
      --plan) PLAN=1 ;;
      -h | --help)
        cat <<'USAGE'
usage: down.sh [--force] [--plan]
  (no option)  remove what the record says up.sh made for this lab, and nothing else
  --plan       read the live state and print each command down.sh would run now, and what it would leave;
               change nothing
  --force      remove every object that has a name from the lab (and its kind), whoever made it: for a
               host whose record is gone. It ends what runs in those namespaces and deletes what someone else
               may have made under those names (their addresses and routes go with them)
USAGE
        exit 0
        ;;
      *) die 2 "unknown option: $arg (down.sh takes --force and --plan)" ;;
    esac
  done
  preflight
  if [[ -n $PLAN ]]; then
    lock shared
    trap cleanup EXIT
    scratch
  else
    lock
    trap cleanup EXIT
    scratch sweep
  fi
  declared_services
  if [[ -z $FORCE || (-f $RECORD && ! -L $RECORD) ]]; then load_record; fi # --force removes it, whatever it is
  SELF_NS=$(stat -L -c '%d:%i' /proc/$$/ns/net)

  # The host is read first, before anything changes: the namespaces' ids and the links' groups prove what is the
  # lab's, and its veths name the namespaces of their peers. Nothing of it is written to a file: down needs no room.
  # The namespaces and their ids are read on their own, and parsed at once; the links and routes below (cutting the
  # first line off one reading of 1 MB took bash 0.1 s to 0.4 s).
  if ! ids=$(ip -j netns list) || ! reading=$(printf '%s\n' "$READING" | ip -j -d -batch -); then
    die 2 "could not read the live state of the host (above); nothing was changed"
  fi
  parse host <(printf '%s\n' "$ids")
  for ns in $(adopted_namespaces); do # a namespace taken over carries its mark on its lo
    if [[ -e /run/netns/$ns ]] && lo=$(in_ns "$ns" ip -j link show dev lo 2>/dev/null); then
      parse "$ns" <(printf '%s\n' "$lo")
    fi
  done
  netns_ids "${NAMESPACES[@]}" # which are live namespaces, and the identity of each, to end what runs in them
  stop_services
  if [[ -n $NFT_TABLE ]]; then remove_firewall; fi
  TEARDOWN=namespaces
  lab_teardown
  delete_namespaces
  parse host <(printf '%s\n' "$ids" "$reading") # while the kernel deletes the namespaces
  TEARDOWN=links
  lab_teardown
  remove_links
  read -ra host_sysctls <<<"${SYSCTL_KEYS[host]:-}"
  if [[ -n $PLAN ]]; then
    for key in "${host_sysctls[@]}"; do sysctl_give "$key"; done
    if ((${#LEFT[@]})); then printf '%s\n' "${LEFT[@]/#/# would leave: }"; fi
    if ((${#PLANNED[@]} == 0)); then
      say "nothing to do: nothing this lab made is here (--plan: nothing was changed)"
      exit 0
    fi
    printf '%s\n' "${PLANNED[@]}"
    n_words "${#PLANNED[@]}" command
    say "$N_WORDS to run (--plan: nothing was changed)"
    exit 0
  fi
  wait_vanished

  # The record forgets what was removed, and what is gone or no longer carries its mark; a line that names what the
  # lab does not remove stays, named. Host sysctls go back when no other lab that is up sets them too.
  for key in "${!GONE[@]}"; do unset -v 'MADE[$key]'; done
  for key in "${!MADE[@]}"; do
    if [[ -z $FORCE && $key != service/* && -z ${KNOWN[$key]:-} ]]; then
      record_line "$key"
      bad_line "$(grep -n -m 1 -x -F -- "$LINE" "$RECORD" | cut -d: -f1)" "$LINE" "names what this lab does not remove"
      unset -v 'MADE[$key]'
    fi
  done
  if ((${#MADE[@]})) && read_marks; then prune_record; fi
  if [[ -n $FORCE ]]; then
    rm -rf -- "$RECORD" "$RECORD.new"
  elif ! save_record; then
    LEFT+=("the record $RECORD could not be written")
  fi
  for key in "${host_sysctls[@]}"; do
    if line=$(sysctl_give "$key"); then
      if [[ -n $line ]]; then say "$line"; fi
      if [[ $line == *" back to "* ]]; then
        REMOVED=$((REMOVED + 1))
        logged host 0 "sysctl -w $key=${line##* back to }"
      fi
    else
      LEFT+=("could not put sysctl $key back (its record is in $SYSCTL_DIR)")
      unrestored=$((unrestored + 1))
    fi
  done

  if ((${#LEFT[@]})); then printf '%s\n' "${LEFT[@]/#/$SCRIPT: }" >&2; fi
  n_words "$unrestored" "host sysctl"
  ((unrestored == 0)) || die 1 "$N_WORDS not put back as before the lab; run down.sh again"
  ((UNREMOVED == 0)) || die 1 "the kernel has not finished removing the veths of the lab; run down.sh again"
  if [[ -z $FORCE ]] && ((${#RECORD_BAD[@]})); then
    n_words "${#RECORD_BAD[@]}" line
    die 1 "the record $RECORD keeps $N_WORDS it cannot use (above); down.sh --force removes them with the record"
  fi
  if ((REMOVED == 0 && ${#LEFT[@]})); then
    say "nothing of lab $LAB to remove: what carries its names was not made by it (above)"
  elif ((REMOVED == 0)); then
    say "lab $LAB is not present; nothing to remove"
  else
    n_words "$REMOVED" object
    say "lab $LAB is down ($N_WORDS removed)"
  fi
}

# --- verify.sh: expectations ----------------------------------------------------------------------------------------------
# probe NS TARGET PORT REACH: an expectation, by ICMP echo (ping) or a TCP connection (bash's /dev/tcp).
probe() {
  local ns=$1 target=$2 port=$3 reach=$4 what have want
  local -a in=()
  [[ $ns == host ]] || in=(in_ns "$ns")
  if [[ $ns != host && ! -e /run/netns/$ns ]]; then
    have="no namespace"
  elif [[ -z $port ]]; then
    if ! command -v ping >/dev/null; then
      have="unchecked (ping is not installed)"
    elif "${in[@]}" ping -c 1 -W 1 "$target" >/dev/null 2>&1; then
      have=reply
    else
      have="no reply"
    fi
  else
    # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
    if have=$("${in[@]}" timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$target" "$port" 2>&1); then
      have=open
    elif [[ $have == *refused* ]]; then
      have=refused
    else
      have="no answer"
    fi
  fi
  if [[ -z $port ]]; then what="$ns icmp $target"; else what="$ns tcp $target:$port"; fi
  if [[ $reach == reach ]]; then
    want=$([[ -z $port ]] && echo reply || echo open)
    result "$what" "$want" "$have" 1
  else
    want=$([[ -z $port ]] && echo "no reply" || echo "no connection")
    case $have in reply | open) ;; "no namespace" | unchecked*) ;; *) have=$want ;; esac
    result "$what" "$want" "$have" 1
  fi
}

# absent_checks: after down.sh, none of what the lab makes is left (lab_absent_checks), no service of it runs and
# no nftables table of it is there.
absent_checks() {
  SERVICE_DO=absent_service lab_services
  lab_absent_checks
  if [[ -n $NFT_TABLE ]]; then
    if [[ -n $NFT_PRESENT ]]; then
      result "host/nft $NFT_TABLE table" absent present 0
    else
      result "host/nft $NFT_TABLE table" absent absent 0
    fi
  fi
}

# verify_main: read everything, check everything, say every difference; change nothing.
verify_main() {
  local arg what=lab_checks tap='' i
  for arg; do
    case $arg in
      --absent) what=absent_checks ;;
      --tap) tap=1 ;;
      -h | --help)
        cat <<'USAGE'
usage: verify.sh [--absent] [--tap]
  (no option)  check that the lab is up as built, and its expectations
  --absent     check that nothing the lab makes is left (after down.sh)
  --tap        print the results as TAP (Test Anything Protocol) for CI systems
USAGE
        exit 0
        ;;
      *) die 2 "unknown option: $arg (verify.sh takes --absent and --tap)" ;;
    esac
  done
  FACTS=1
  preflight
  lock shared
  trap cleanup EXIT
  scratch
  declared_services
  load_record
  run_checks "$what"
  n_words "$PASSED" check
  if [[ -n $tap ]]; then
    printf 'TAP version 13\n1..%d\n' "${#REPORT[@]}"
    for i in "${!REPORT[@]}"; do
      case ${REPORT[i]} in
        "ok   "*) printf 'ok %d - %s\n' "$((i + 1))" "${REPORT[i]#ok   }" ;;
        *) printf 'not ok %d - %s\n' "$((i + 1))" "${REPORT[i]#FAIL }" ;;
      esac
    done
    printf '# lab %s: %s passed, %d failed\n' "$LAB" "$N_WORDS" "$FAILED"
  else
    printf '%s\n' "${REPORT[@]}"
    say "lab $LAB: $N_WORDS passed, $FAILED failed"
  fi
  ((FAILED == 0)) || exit 1
}

# --- which script this is ---------------------------------------------------------------------------------------
case $SCRIPT in
  up.sh) up_main "$@" ;;
  down.sh) down_main "$@" ;;
  verify.sh) verify_main "$@" ;;
  *) die 2 "SCRIPT is $SCRIPT: the lab's part must name up.sh, down.sh or verify.sh" ;;
esac
