# shellcheck shell=bash
# Sourced by .ci/run. Installs the command-line tools that tests cross-check
# against: b3sum (Debian package b3sum), the reference BLAKE3 implementation
# whose output every lakeproof file digest must match byte for byte.
# Skips the install when the tool is already on PATH.
if ! command -v b3sum >/dev/null 2>&1; then
  echo "installing b3sum"
  if [ "$(id -u)" = 0 ]; then _sudo=; else _sudo=sudo; fi
  $_sudo apt-get update -qq
  $_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq b3sum >/dev/null
  unset _sudo
fi
b3sum --version
