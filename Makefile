# One non-recursive GNU Makefile; every output goes to $(BUILD).
#   make          release build (-O2, jemalloc)            -> build/bin/
#   make test     ASan+UBSan build in build/san, then every test (tests/run.sh)
#   make run      release build, local cluster, demo session (scripts/run.sh)
#   make bench    release build, benchmarks against redis-server (bench/run.sh)
# Each of them first installs missing Debian packages (scripts/deps.sh).

BUILD ?= build
SAN   ?= 0
CC    ?= cc
WERROR ?= -Werror

CFLAGS := -std=c11 -D_GNU_SOURCE -g -fno-omit-frame-pointer -Wall -Wextra $(WERROR) -Wshadow \
          -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -MMD -MP \
          -I. -I$(BUILD)/gen
LDLIBS := -lzmq -lprotobuf-c -lsodium -lpthread -lm
ifeq ($(SAN),1)
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
  MALLOC  :=
else
  CFLAGS  += -O2
  MALLOC  := -ljemalloc
endif

GEN := $(BUILD)/gen
OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin

# Libraries in link order (a library may use those after it).
MODULES := client anna proto lattices common
# Every .c in a module folder except programs (main.c, *_main.c) goes into lib<module>.a.
mod_srcs = $(filter-out $(1)/main.c $(wildcard $(1)/*_main.c),$(wildcard $(1)/*.c))
LIB = $(BUILD)/lib$(1).a
ALL_LIBS := $(foreach m,$(MODULES),$(call LIB,$(m)))
PROTO_GEN := $(GEN)/anna.pb-c.c $(GEN)/anna.pb-c.h

.PHONY: all deps test run stop bench clean format headers
.DEFAULT_GOAL := all
# Keep objects of programs (make would delete them as intermediates and relink every time).
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory build-all

deps:
	@scripts/deps.sh

PROGRAMS := $(BIN)/anna-server $(BIN)/anna-cli $(BIN)/anna-bench $(BUILD)/selftest
SYSTEST_SRCS := $(wildcard tests/system/*.c)
SYSTEST_BINS := $(patsubst tests/system/%.c,$(BUILD)/tests/%,$(SYSTEST_SRCS))

.PHONY: build-all
build-all: $(PROGRAMS) $(SYSTEST_BINS)

$(GEN)/anna.pb-c.c $(GEN)/anna.pb-c.h: proto/anna.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/anna.proto

# Generated code is compiled with our flags minus the ones it was not written for.
$(OBJ)/gen/anna.pb-c.o: $(GEN)/anna.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wmissing-prototypes -Wundef,$(CFLAGS)) -c $< -o $@

$(OBJ)/%.o: %.c | $(PROTO_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

define LIB_RULE
$(call LIB,$(1)): $(patsubst %.c,$(OBJ)/%.o,$(call mod_srcs,$(1))) $(if $(filter proto,$(1)),$(OBJ)/gen/anna.pb-c.o)
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call LIB_RULE,$(m))))

$(BIN)/anna-server: $(OBJ)/anna/main.o $(ALL_LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(MALLOC) $(LDLIBS)

$(BIN)/anna-cli: $(OBJ)/client/cli_main.o $(ALL_LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(MALLOC) $(LDLIBS)

$(BIN)/anna-bench: $(OBJ)/bench/kvs_bench.o $(ALL_LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(MALLOC) $(LDLIBS)

$(BUILD)/tests/%: $(OBJ)/tests/system/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The self-test table is generated from every `void x_test(bool verbose)` in the modules,
# so adding a self-test needs no edit here.
LIB_SRCS := $(foreach m,$(MODULES),$(call mod_srcs,$(m)))
$(GEN)/selftest_table.h: $(LIB_SRCS) Makefile
	@mkdir -p $(GEN)
	@grep -ho '^void [a-z0-9_]*_test(bool verbose)' $(LIB_SRCS) | sed 's/^void \([a-z0-9_]*\)_test.*/\1/' \
	  | sort -u | awk '{d=d "void " $$1 "_test(bool verbose);\n"; t=t "    {\"" $$1 "\", " $$1 "_test},\n"} \
	  END {printf "%s#define SELFTEST_TABLE \\\n", d; n=split(t,a,"\n"); for(i=1;i<n;i++) printf "%s \\\n", a[i]; print ""}' > $@.tmp
	@mv $@.tmp $@

$(OBJ)/tests/selftest.o: $(GEN)/selftest_table.h
$(BUILD)/selftest: $(OBJ)/tests/selftest.o $(ALL_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 build-all
	@$(MAKE) --no-print-directory BUILD=build build-all
	@tests/run.sh build/san build

run: all
	@scripts/run.sh build

stop:
	@scripts/stop.sh

bench: all
	@bench/run.sh build

headers:
	@for h in $$(ls */*.h); do echo "#include \"$$h\"" | $(CC) $(CFLAGS) -x c -fsyntax-only - || exit 1; done

format:
	clang-format -i */*.c */*.h

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
