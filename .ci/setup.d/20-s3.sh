# shellcheck shell=bash
# Sourced by .ci/run (and usable alone: `source .ci/setup.d/20-s3.sh`).
# Installs versitygw, the real S3 server that the tests of sources/s3 and
# cmd/lakeproof start on 127.0.0.1 (internal/s3test), into
# $(go env GOPATH)/bin. Skips the build (about 2.5 min cold) when that
# version is already there, and exports LAKEPROOF_VERSITYGW for the tests.
_vgw_version=v1.8.0
_vgw="$(go env GOPATH)/bin/versitygw"
if [ -x "$_vgw" ] && [ "$(go version -m "$_vgw" 2>/dev/null | awk '$1 == "mod" { print $3 }')" = "$_vgw_version" ]; then
  echo "versitygw $_vgw_version already installed at $_vgw"
else
  echo "installing versitygw $_vgw_version (go install, a few minutes cold)"
  go install "github.com/versity/versitygw/cmd/versitygw@$_vgw_version"
fi
export LAKEPROOF_VERSITYGW="$_vgw"
unset _vgw _vgw_version
