# One non-recursive GNU Makefile; every output goes to $(BUILD).
#   make          release build (-O2, jemalloc)            -> build/bin/
#   make test     ASan+UBSan build in build/san, then every test (tests/run.sh)
#   make run      release build, local cluster, demo session (scripts/run.sh)
#   make bench    release build: KVS vs redis-server, RESP, FaaS, cluster, consistency levels (bench/*.sh)
# Each of them first installs missing Debian packages (scripts/deps.sh).

BUILD ?= build
SAN   ?= 0
CC    ?= cc
WERROR ?= -Werror

CFLAGS := -std=c11 -D_GNU_SOURCE -g -fno-omit-frame-pointer -Wall -Wextra $(WERROR) -Wshadow \
          -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -MMD -MP \
          -I. -I$(BUILD)/gen
LDLIBS := -lzmq -lprotobuf-c -lsodium -lpthread -lm -ldl
ifeq ($(SAN),1)
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -DANNA_FAULTS
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
MODULES := scheduler executor cache client anna proto lattices common
# Every .c in a module folder except programs (main.c, *_main.c) goes into lib<module>.a.
mod_srcs = $(filter-out $(1)/main.c $(wildcard $(1)/*_main.c),$(wildcard $(1)/*.c))
LIB = $(BUILD)/lib$(1).a
ALL_LIBS := $(foreach m,$(MODULES),$(call LIB,$(m)))
PROTOS := anna cloudburst
PROTO_GEN := $(foreach p,$(PROTOS),$(GEN)/$(p).pb-c.c $(GEN)/$(p).pb-c.h)

.PHONY: all deps test run stop bench clean format headers
.DEFAULT_GOAL := all
# Keep objects of programs (make would delete them as intermediates and relink every time).
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory build-all

deps:
	@scripts/deps.sh

# Programs: name:source. A program whose source does not exist yet is skipped.
PROGRAM_TABLE := anna-server:anna/main.c anna-cli:client/cli_main.c cb:client/cb_main.c \
                 cb-cache:cache/main.c cb-executor:executor/main.c cb-scheduler:scheduler/main.c \
                 anna-bench:bench/kvs_bench.c cb-bench:bench/dag_bench.c
prog_src = $(word 2,$(subst :, ,$(filter $(1):%,$(PROGRAM_TABLE))))
PROGRAM_NAMES := $(foreach e,$(PROGRAM_TABLE),$(if $(wildcard $(word 2,$(subst :, ,$(e)))),$(word 1,$(subst :, ,$(e)))))
PROGRAMS := $(addprefix $(BIN)/,$(PROGRAM_NAMES)) $(BUILD)/selftest
SYSTEST_SRCS := $(wildcard tests/system/*.c)
SYSTEST_BINS := $(patsubst tests/system/%.c,$(BUILD)/tests/%,$(SYSTEST_SRCS))

.PHONY: build-all
build-all: $(PROGRAMS) $(SYSTEST_BINS)

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $<

# Generated code is compiled with our flags minus the ones it was not written for.
$(OBJ)/gen/%.pb-c.o: $(GEN)/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wmissing-prototypes -Wundef,$(CFLAGS)) -c $< -o $@

$(OBJ)/%.o: %.c | $(PROTO_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

define LIB_RULE
$(call LIB,$(1)): $(patsubst %.c,$(OBJ)/%.o,$(call mod_srcs,$(1))) $(if $(filter proto,$(1)),$(foreach p,$(PROTOS),$(OBJ)/gen/$(p).pb-c.o))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call LIB_RULE,$(m))))

# The executor exports its symbols so that the functions it dlopens can call the user
# library (cb_fn_*) and the lattices it links.
RDYNAMIC_cb-executor := -rdynamic
define PROG_RULE
$(BIN)/$(1): $(patsubst %.c,$(OBJ)/%.o,$(call prog_src,$(1))) $(ALL_LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) $(RDYNAMIC_$(1)) -o $$@ $$^ $(MALLOC) $(LDLIBS)
endef
$(foreach p,$(PROGRAM_NAMES),$(eval $(call PROG_RULE,$(p))))

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
	@bench/resp_bench.sh build
	@bench/cluster_bench.sh build
	@bench/consistency.sh build

headers:
	@for h in $$(ls */*.h); do echo "#include \"$$h\"" | $(CC) $(CFLAGS) -x c -fsyntax-only - || exit 1; done

format:
	clang-format -i */*.c */*.h

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# User functions: examples/*.c -> $(BUILD)/examples/*.so, built against executor/function.h.
# A user builds their own the same way: cc -shared -fPIC -I<repo> f.c -o f.so
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%.so,$(EXAMPLE_SRCS))
$(BUILD)/examples/%.so: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra $(WERROR) -I. -shared -fPIC $< -o $@
build-all: $(EXAMPLES)
