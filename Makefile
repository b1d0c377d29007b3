# MaLiang: `make demo` and `make test` are the two commands of the README's Quick start.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIG ?= Release
BUILD := build
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

.PHONY: all setup build cli native imagej aot dist test demo bench clean

all: build

# Installs what is missing (Debian packages named in DESIGN.md); idempotent, quiet when all is there.
setup:
	@scripts/setup.sh

build: setup cli native imagej

cli:
	$(DOTNET) build MaLiang.Plugins.sln -c $(CONFIG) -nologo -clp:ErrorsOnly
	$(DOTNET) publish src/Cli/MaLiang.Cli.csproj -c $(CONFIG) -nologo -clp:ErrorsOnly -o $(BUILD)/cli
	@printf '#!/usr/bin/env bash\n# launcher for the framework-dependent maliang CLI (make build)\nexec dotnet "$$(dirname "$$(readlink -f "$$0")")/cli/maliang.dll" "$$@"\n' > $(BUILD)/maliang
	@chmod +x $(BUILD)/maliang
	@echo "built $(BUILD)/maliang"

# NativeAOT C ABI library for Python (ctypes), Java (JNA) and C callers. Where NativeAOT is not possible the rest of the
# build goes on, and this says so loudly: the Python module and the ImageJ plugin then cannot run (their tests fail).
native:
	@if $(DOTNET) publish src/Native/MaLiang.Native.csproj -c $(CONFIG) -nologo -clp:ErrorsOnly -o $(BUILD)/native/publish; then \
	  cp $(BUILD)/native/publish/libmaliang.so $(BUILD)/native/libmaliang.so && cp src/Native/maliang.h $(BUILD)/native/ && \
	  echo "built $(BUILD)/native/libmaliang.so"; \
	else rm -f $(BUILD)/native/libmaliang.so; \
	  echo "*** make native: NativeAOT publish FAILED: build/native/libmaliang.so was NOT built, so the Python module and the ImageJ plugin cannot run. NativeAOT needs clang or gcc and the ILCompiler pack for $(shell grep -o 'net[0-9.]*' Directory.Build.props | head -1) from NuGet. The CLI (build/maliang) is unaffected." >&2; fi

# Fiji/ImageJ plugin jar (Java 8 bytecode, the native library inside): build/imagej/MaLiang_.jar
imagej: native
	@if [ -f $(BUILD)/native/libmaliang.so ]; then src/ImageJBridge/build.sh; \
	else echo "*** make imagej: NOT built: build/native/libmaliang.so is missing (see make native above)" >&2; fi

# Self-contained native CLI for machines without the .NET SDK (GPU nodes): build/aot/maliang
aot: setup
	$(DOTNET) publish src/Cli/MaLiang.Cli.csproj -c $(CONFIG) -nologo -clp:ErrorsOnly -r linux-x64 -p:PublishAot=true -p:IlcInstructionSet=x86-x64-v3 -o $(BUILD)/aot
	@echo "built $(BUILD)/aot/maliang"

# Every platform's engine (linux-x64, linux-arm64, win-x64, osx-arm64, osx-x64), the Fiji jar with all five and one
# Python wheel per platform, in build/dist (docs/DESIGN.md, Platforms; README, Install)
dist: setup native
	@scripts/dist.sh

test: build dist
	@scripts/run-tests.sh

demo: build
	@scripts/demo.sh

bench: build
	$(BUILD)/maliang bench

clean:
	rm -rf $(BUILD) out
	find . -name bin -o -name obj | grep -E '/(bin|obj)$$' | xargs rm -rf
