#!/usr/bin/env bash
# Installs what Joblet needs on a Debian host (as root): the OCI runtime and the per-job monitor from
# Debian's packages (only when missing), the npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v runc >/dev/null || need+=(runc)
command -v conmon >/dev/null || need+=(conmon)
# filesystem.workSizeMB: each job's /work is an ext4 image (mkfs.ext4) loop-mounted with mount/umount.
command -v mkfs.ext4 >/dev/null || [ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v mount >/dev/null || need+=(mount)
# ps, ip and python3 are used by the test suite and the first-job demo.
command -v ps >/dev/null || need+=(procps)
[ -x /usr/bin/python3 ] || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "==> npm run build"
npm run build --silent
