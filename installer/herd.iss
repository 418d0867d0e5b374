; Inno Setup 6 script of Herd's Windows installer, compiled by installer\build-windows.ps1:
;   iscc /DAppVersion=0.1.0 /DSourceDir=C:\...\build\pyi-dist-cpu\Herd-0.1.0 /DVariant=cpu
;        /DOutputDir=C:\...\dist installer\herd.iss
; Per-user (no administrator rights), into %LOCALAPPDATA%\Programs\Herd, with a Start menu
; entry on herdw.exe (the window, no console) and an uninstaller. Chats, settings and models
; live elsewhere (%LOCALAPPDATA%\Herd, the Hugging Face cache) and are kept on uninstall.
; Not compiled where it was written (Linux); CI compiles it on windows-2022.
#ifndef AppVersion
  #error Pass /DAppVersion=...
#endif
#ifndef SourceDir
  #error Pass /DSourceDir=... (the PyInstaller folder)
#endif
#ifndef Variant
  #define Variant "cpu"
#endif
#ifndef OutputDir
  #define OutputDir "..\dist"
#endif

[Setup]
AppId={{6C3E9B0A-4F1D-4E8A-9C55-2B7D8E1F4A30}
AppName=Herd
AppVersion={#AppVersion}
AppVerName=Herd {#AppVersion}
AppPublisher=Herd
DefaultDirName={localappdata}\Programs\Herd
DefaultGroupName=Herd
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=Herd-{#AppVersion}-windows-x86_64-{#Variant}-setup
SetupIconFile=..\assets\icons\herd.ico
UninstallDisplayIcon={app}\herdw.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; a new version replaces the old folder's libraries (CPU variants may come and go)
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\Herd"; Filename: "{app}\herdw.exe"; IconFilename: "{app}\herd.ico"
Name: "{autodesktop}\Herd"; Filename: "{app}\herdw.exe"; IconFilename: "{app}\herd.ico"; Tasks: desktopicon

[Registry]
; "Open with Herd" for .gguf files (not the default handler)
Root: HKCU; Subkey: "Software\Classes\.gguf\OpenWithProgids"; ValueType: string; ValueName: "Herd.gguf"; ValueData: ""; Flags: uninsdeletevalue
Root: HKCU; Subkey: "Software\Classes\Herd.gguf"; ValueType: string; ValueName: ""; ValueData: "GGUF model"; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\Herd.gguf\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\herdw.exe"" ""%1"""

[Run]
Filename: "{app}\herdw.exe"; Description: "{cm:LaunchProgram,Herd}"; Flags: nowait postinstall skipifsilent
