# Sourced by .ci/run. Installs the npm packages of the foreign-client
# conformance test (conformance/is-client: the unmodified @iota/is-client
# 0.1.19 with the is-shared-modules 0.1.16 override), from its lockfile.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "40-node: installing nodejs and npm from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
echo "40-node: node $(node --version), npm $(npm --version)"
(cd conformance/is-client && npm ci --no-audit --no-fund --loglevel=error)
