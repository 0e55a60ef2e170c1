#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian/Ubuntu machine, and nothing that is there already.
#   scripts/prerequisites.sh build   -> only what the build needs
#   scripts/prerequisites.sh test    -> also the real services the integration tests start (redis-server, ...)
set -euo pipefail
need=()

# TorchSharp's native library needs GLIBCXX_3.4.32; on older libstdc++ (Debian 12) the build patches its
# output copy (build/TorchSharpNativeFix.targets), which takes g++ and patchelf.
libstdcxx=$(ls /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /usr/lib/aarch64-linux-gnu/libstdc++.so.6 2>/dev/null | head -n1 || true)
if [ -n "$libstdcxx" ] && ! grep -q GLIBCXX_3.4.32 "$libstdcxx"; then
  command -v patchelf >/dev/null || need+=(patchelf)
  command -v g++ >/dev/null || need+=(g++)
fi
if [ "${1:-build}" = "test" ]; then
  command -v redis-server >/dev/null || need+=(redis-server)
  # prometheus: promtool for the rule tests, and the server itself for the production-walk test.
  { command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need+=(prometheus)
  command -v kcat >/dev/null || need+=(kcat)
  # docker-compose only validates docker-compose.yml (`docker-compose config`); no engine is needed or started.
  command -v docker-compose >/dev/null || need+=(docker-compose)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
