#!/bin/sh
# The conformance tool's client fixture: `conformance client --command "client.sh AIVM"`
# appends the mock server's URL as the last argument and names the scenario in
# MCP_CONFORMANCE_SCENARIO. Writes an aivm.toml for that URL in a temporary folder and drives
# `aivm mcp list` / `aivm mcp call` as the scenario expects.
set -eu
AIVM="$1"
for last; do :; done
URL="$last"
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
printf '[mcp.servers.t]\nurl = "%s"\n' "$URL" > "$DIR/aivm.toml"
cd "$DIR"
# Pin the mock server's tools first, as a person would after reviewing them.
call() {
  "$AIVM" mcp lock --yes t >/dev/null
  "$AIVM" mcp call --allow-tool="t.$1" "t.$1" "$2"
}
case "${MCP_CONFORMANCE_SCENARIO:-}" in
  initialize)
    "$AIVM" mcp list t ;;
  tools_call)
    call add_numbers '{"a": 2, "b": 3}' ;;
  sse-retry)
    call test_reconnection '{}' ;;
  elicitation-sep1034-client-defaults)
    call test_client_elicitation_defaults '{}' ;;
  *)
    # auth/* and anything newer: list the tools, which is all aivm does unauthenticated.
    "$AIVM" mcp list t ;;
esac
