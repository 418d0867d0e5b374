#!/usr/bin/env bash
# Install Herd for this user, from the unpacked bundle this script is in:
#   ~/.local/lib/herd/          the program (this folder)
#   ~/.local/bin/herd           a link to it, for the terminal
#   ~/.local/share/applications/herd.desktop and the icons: Herd in the applications menu
#
#   ./install.sh               install, or replace the installed version
#   ./install.sh --uninstall   remove all of the above (chats, settings and models stay)
# PREFIX (default ~/.local) and XDG_DATA_HOME move them. Nothing needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix="${PREFIX:-$HOME/.local}"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
dest="$prefix/lib/herd"
sizes="16 24 32 48 64 128 256 512"

refresh() {
  command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
  command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$dest" "$data/applications/herd.desktop" "$data/icons/hicolor/scalable/apps/herd.svg"
  [ -L "$prefix/bin/herd" ] && rm -f "$prefix/bin/herd"
  for s in $sizes; do rm -f "$data/icons/hicolor/${s}x${s}/apps/herd.png"; done
  refresh
  echo "Herd is uninstalled (your chats, settings and models are kept)."
  exit 0
fi

if [ "$here" != "$dest" ]; then
  mkdir -p "$prefix/lib"
  rm -rf "$dest.new"
  cp -a "$here" "$dest.new"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
fi
mkdir -p "$prefix/bin" "$data/applications" "$data/icons/hicolor/scalable/apps"
ln -sfn "$dest/herd" "$prefix/bin/herd"
for s in $sizes; do
  mkdir -p "$data/icons/hicolor/${s}x${s}/apps"
  cp "$dest/icons/herd-$s.png" "$data/icons/hicolor/${s}x${s}/apps/herd.png"
done
cp "$dest/icons/herd.svg" "$data/icons/hicolor/scalable/apps/herd.svg"
sed -e "s|^Exec=.*|Exec=\"$dest/herd\" %f|" -e "s|^TryExec=.*|TryExec=$dest/herd|" \
  "$dest/herd.desktop" > "$data/applications/herd.desktop"
chmod +x "$data/applications/herd.desktop"
refresh
echo "Herd is installed in $dest: open it from the applications menu, or run $prefix/bin/herd."
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "($prefix/bin is not on your PATH: add it to run \`herd\` by name.)" ;;
esac
