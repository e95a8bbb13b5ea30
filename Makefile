# corio — the commands a newcomer types. Every target that builds installs what it
# needs first (scripts/bootstrap, idempotent).
BUILD     ?= build
SAN_BUILD ?= build-sanitize
JOBS      ?= 2
LUA       ?= lua5.4
PREFIX    ?= /usr/local
WERROR    ?= $(if $(CI),ON,OFF)

comma := ,
# Ninja when present, chosen only when a build directory is first configured.
configure = cmake -S . -B $(1) $$([ -f $(1)/CMakeCache.txt ] || ! command -v ninja >/dev/null || echo -GNinja) \
            -DCORIO_WERROR=$(WERROR) $(2)

.PHONY: all bootstrap build run test test-sanitize env install bench clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@$(call configure,$(BUILD),) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@eval "$$($(MAKE) -s --no-print-directory env)"; $(LUA) examples/hello.lua

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-sanitize: bootstrap
	@$(call configure,$(SAN_BUILD),-DCORIO_SANITIZE=address$(comma)undefined -DCORIO_BENCH=OFF) >/dev/null
	cmake --build $(SAN_BUILD) -j$(JOBS)
	cd $(SAN_BUILD) && ctest --output-on-failure -j$(JOBS)

# eval "$(make -s env)" (or LUA=luajit) lets the interpreter find corio in this checkout.
env:
	@abi=$$([ "$(LUA)" = luajit ] && echo luajit || echo lua5.4); \
	echo "export LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;'"; \
	echo "export LUA_CPATH='$(CURDIR)/$(BUILD)/$$abi/?.so;;'"

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# corio beside ../shared/bench's peers in one run (~16 min); writes docs/performance.md.
# The peers' packages are installed here only (scripts/bootstrap --bench), never for test.
bench:
	@scripts/bootstrap --bench
	@$(MAKE) --no-print-directory build
	BUILD=$(BUILD) LUA=$(LUA) bench/run.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
