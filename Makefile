# vmswap — guest-memory swap for any VMM, attached with LD_PRELOAD.
#   make          build build/libvmswap.so build/vmswap-helper build/vmswapctl build/toyvmm
#   make demo     walk a 512 MiB toy VMM through enable/trim/out/disable
#   make check    run every test (with a short stress run)
#   make stress   the long stress run (STRESS_* variables, see tests/README.md)
#   make bench    the benchmark (tests/bench/README.md); make check-bench, a short one
#   make fuzz     fuzz the control parser and the wire protocol (FUZZ_SECONDS each)
#   make clean

CC       ?= cc
CFLAGS   ?= -O2 -g
# The project's own flags go after whatever CPPFLAGS, CFLAGS and LDFLAGS
# the caller gives. WERROR=1 (CI) turns every warning into an error.
WARNINGS := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wvla
override CPPFLAGS += -Iinclude -D_GNU_SOURCE
override CFLAGS   += -std=gnu11 $(WARNINGS) $(if $(filter 1,$(WERROR)),-Werror)
LDLIBS   += -lpthread
B        := build

# vmswap-helper runs as root and keeps CAP_SYS_PTRACE: it and vmswapctl
# are built hardened (fortify needs an optimised build).
HARDEN_CFLAGS  := -fstack-protector-strong -fPIE \
		  $(if $(findstring -O0,$(CFLAGS)),,-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2)
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now

# Libraries by pkg-config name, with the Debian package that has them. The
# tests' are needed only by the goals that build tests.
PKG_BUILD := libseccomp:libseccomp-dev liburing:liburing-dev
PKG_TEST  := criterion:libcriterion-dev
TEST_GOALS := check% stress bench fuzz $(B)/test-% $(B)/asan/% $(B)/tsan/% $(B)/fuzz/%
PKGS_NEEDED := $(PKG_BUILD) $(if $(filter $(TEST_GOALS),$(MAKECMDGOALS)),$(PKG_TEST))
# Programs a goal needs besides the compiler, as program:package.
TOOLS_NEEDED :=

PRELOAD_SRCS := $(sort $(wildcard preload/*.c))
# helper/: one folder a layer (helper/README.md); ctl/ is vmswapctl.
HELPER_ALL   := $(sort $(filter-out helper/ctl/%.c,$(wildcard helper/*.c helper/*/*.c)))
HELPER_LIB   := $(filter-out helper/main.c,$(HELPER_ALL))
CTL_SRCS     := $(sort $(wildcard helper/ctl/*.c)) helper/state/cmd.c helper/sys/memcg.c
DEMO_SRCS    := $(sort $(wildcard demo/*.c))
HARNESS_SRCS := $(sort $(wildcard tests/harness*.c)) helper/ctl/ctl_json.c
UNIT_SRCS    := $(sort $(wildcard tests/unit_*.c)) tests/fixture.c
E2E_SRCS     := $(sort $(wildcard tests/e2e_*.c)) $(HARNESS_SRCS)
SHIMT_TESTS  := $(sort $(wildcard tests/shim_*.c))
SHIMT_SRCS   := $(SHIMT_TESTS) $(HARNESS_SRCS)
STRESS_SRCS  := $(sort $(wildcard tests/stress_*.c)) $(HARNESS_SRCS)
# Programs the tests run under the shim (tests/progs/).
TPROGS       := $(B)/tests/mapper $(B)/tests/mapper-needed $(B)/tests/libearly.so \
		$(B)/tests/exec-vmm

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

PROGS := $(B)/libvmswap.so $(B)/vmswap-helper $(B)/vmswapctl $(B)/toyvmm
TESTS := $(B)/test-unit $(B)/test-e2e $(if $(SHIMT_TESTS),$(B)/test-shim) $(B)/test-stress

.PHONY: all deps demo check stress clean
all: deps $(PROGS)

# The libraries this goal needs, found with pkg-config. Missing ones are
# installed with apt-get when root on Debian; otherwise the command is
# printed. Every object waits for it, so make -j cannot race it.
deps:
	@missing=""; \
	command -v $(CC) >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	for p in $(PKGS_NEEDED); do \
	  pkg-config --exists $${p%%:*} 2>/dev/null || missing="$$missing $${p#*:}"; \
	done; \
	for t in $(TOOLS_NEEDED); do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing:$$missing; on Debian run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# One object rule for the three builds (plain, ASan+UBSan, TSan); what
# differs per folder is in XCFLAGS.
SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN := -fsanitize=thread
define object_rule
$(B)/$(1)%.o: %.c | deps
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(XCFLAGS) $(2) \
		$$(if $$(findstring tests/,$$<),$$$$(pkg-config --cflags criterion)) -MMD -MP -c -o $$@ $$<
endef
$(eval $(call object_rule,obj/,))
$(eval $(call object_rule,asan/obj/,$(SAN)))
$(eval $(call object_rule,tsan/obj/,$(TSAN)))
$(B)/obj/preload/%.o: XCFLAGS := -fPIC -fvisibility=hidden
$(B)/obj/helper/%.o: XCFLAGS := $(HARDEN_CFLAGS)

$(B)/libvmswap.so: $(call obj,$(PRELOAD_SRCS))
	$(CC) $(LDFLAGS) -shared -o $@ $^ -ldl -lpthread

$(B)/vmswap-helper: $(call obj,$(HELPER_ALL))
	$(CC) $(LDFLAGS) $(HARDEN_LDFLAGS) -o $@ $^ $$(pkg-config --libs libseccomp liburing) $(LDLIBS)

$(B)/vmswapctl: $(call obj,$(CTL_SRCS))
	$(CC) $(LDFLAGS) $(HARDEN_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/toyvmm: $(call obj,$(DEMO_SRCS))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/test-unit: $(call obj,$(UNIT_SRCS) $(HELPER_LIB))
	$(CC) $(LDFLAGS) -o $@ $^ $$(pkg-config --libs criterion libseccomp liburing) $(LDLIBS)

$(B)/test-e2e: $(call obj,$(E2E_SRCS)) | $(TPROGS)
	$(CC) $(LDFLAGS) -o $@ $^ $$(pkg-config --libs criterion) $(LDLIBS)

$(B)/test-shim: $(call obj,$(SHIMT_SRCS)) | $(TPROGS)
	$(CC) $(LDFLAGS) -o $@ $^ $$(pkg-config --libs criterion) -ldl $(LDLIBS)

$(B)/test-stress: $(call obj,$(STRESS_SRCS)) | $(TPROGS)
	$(CC) $(LDFLAGS) -o $@ $^ $$(pkg-config --libs criterion) $(LDLIBS)

$(B)/tests/libearly.so: tests/progs/early.c tests/progs/mapper.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/mapper: tests/progs/mapper.c tests/progs/mapper.h tests/progs/mix.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -ldl

$(B)/tests/exec-vmm: tests/progs/execvmm.c tests/progs/mix.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# Same program, with libearly.so as a DT_NEEDED library.
$(B)/tests/mapper-needed: tests/progs/mapper.c tests/progs/mapper.h tests/progs/mix.h \
			 $(B)/tests/libearly.so
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(B)/tests -Wl,--no-as-needed -learly \
		-Wl,-rpath,'$$ORIGIN' -ldl

demo: all
	@demo/run-demo.sh $(B)

# Tests run from the top directory; they find the binaries in build/.
check: all $(TESTS) $(TPROGS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t --jobs=1 $(CRITERION_FLAGS); done
	@$(MAKE) --no-print-directory check-asan check-asan-e2e check-tsan check-fuzz

# The long stress run: STRESS_CYCLES random cycles per layout on a
# STRESS_SIZE guest (tests/README.md). make check runs the short default.
stress: all $(B)/test-stress
	@c=$${STRESS_CYCLES:-200}; STRESS_CYCLES=$$c STRESS_ANON_CYCLES=$${STRESS_ANON_CYCLES:-$$((c > 1 ? c / 2 : 1))} \
	  STRESS_SIZE=$${STRESS_SIZE:-1G} $(B)/test-stress --jobs=1 $(CRITERION_FLAGS)

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj $(B)/asan $(B)/tsan -name '*.d' 2>/dev/null)

# The unit tests (helper internals, its copy threads included) again under
# ASan and UBSan; any report fails the run.
.PHONY: check-asan

$(B)/asan/test-unit: $(patsubst %.c,$(B)/asan/obj/%.o,$(UNIT_SRCS) $(HELPER_LIB))
	$(CC) $(SAN) -o $@ $^ $$(pkg-config --libs criterion libseccomp liburing) $(LDLIBS)

check-asan: $(B)/asan/test-unit
	@echo "== $< (ASan+UBSan)"; $< --jobs=1 $(CRITERION_FLAGS)

# The end-to-end suites against vmswap-helper, vmswapctl and toyvmm built
# with ASan+UBSan (build/asan/). The shim cannot run inside a program
# without ASan, so it stays as built; it is copied next to the ASan
# helper, which is where it starts the helper from (VMSWAP_BUILD_DIR
# tells the harness where all the binaries are). toyvmm carries its ASan
# runtime (-static-libasan): a preloaded shim would otherwise come first.
# Every process logs its reports, leaks included, under
# build/asan/e2e-log/; any file there fails the run. About 90 s, every
# suite (the kvm suite is 27 s of it, as without ASan). Not the closed
# suite: its closed-off children die of SIGSEGV on purpose, which ASan
# in toyvmm reports as an error.
asan_obj = $(patsubst %.c,$(B)/asan/obj/%.o,$(1))
ASAN_E2E_BINS := $(B)/asan/vmswap-helper $(B)/asan/vmswapctl $(B)/asan/toyvmm \
		 $(B)/asan/libvmswap.so $(B)/asan/tests/exec-vmm
ASAN_E2E_SUITES ?= cycle faults trim errors procs anon unmanaged exec kvm dual wake
ASAN_E2E_LOG := $(CURDIR)/$(B)/asan/e2e-log
.PHONY: check-asan-e2e
$(B)/asan/vmswap-helper: $(call asan_obj,$(HELPER_ALL))
	$(CC) $(SAN) -o $@ $^ $$(pkg-config --libs libseccomp liburing) $(LDLIBS)

$(B)/asan/vmswapctl: $(call asan_obj,$(CTL_SRCS))
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(B)/asan/toyvmm: $(call asan_obj,$(DEMO_SRCS))
	$(CC) $(SAN) -static-libasan -o $@ $^ $(LDLIBS)

$(B)/asan/libvmswap.so: $(B)/libvmswap.so
	cp $< $@

$(B)/asan/tests/exec-vmm: $(B)/tests/exec-vmm
	@mkdir -p $(dir $@)
	cp $< $@

check-asan-e2e: $(B)/test-e2e $(ASAN_E2E_BINS)
	@rm -rf $(ASAN_E2E_LOG); mkdir -p $(ASAN_E2E_LOG)
	@echo "== $(B)/test-e2e against ASan+UBSan helper, vmswapctl, toyvmm: $(ASAN_E2E_SUITES)"
	@filter="$$(echo $(ASAN_E2E_SUITES) | sed 's/ /|/g')"; \
	VMSWAP_BUILD_DIR=$(B)/asan \
	ASAN_OPTIONS=log_path=$(ASAN_E2E_LOG)/asan:detect_leaks=1 \
	UBSAN_OPTIONS=log_path=$(ASAN_E2E_LOG)/ubsan:print_stacktrace=1:halt_on_error=1 \
	$(B)/test-e2e --jobs=1 --filter "@($$filter)/*" $(CRITERION_FLAGS); r=$$?; \
	if [ -n "$$(ls -A $(ASAN_E2E_LOG))" ]; then \
	  echo "check-asan-e2e: sanitizer reports:"; head -n 60 $(ASAN_E2E_LOG)/*; exit 1; fi; \
	exit $$r

# The helper's threads under TSan: a plain driver (tests/tsan/; Criterion's
# runner cannot start under gcc's TSan) runs the real helper objects
# against a forked VMM. Any report fails the run (exit 66).
TSAN_SRCS := $(wildcard tests/tsan/*.c) tests/fixture.c $(HELPER_LIB)
TSAN_OPTS := halt_on_error=1 exitcode=66 second_deadlock_stack=1
.PHONY: check-tsan

$(B)/tsan/driver: $(patsubst %.c,$(B)/tsan/obj/%.o,$(TSAN_SRCS))
	$(CC) $(TSAN) -o $@ $^ $$(pkg-config --libs libseccomp liburing) $(LDLIBS)

# Twice: fault reads through io_uring, then through the reader threads.
check-tsan: $(B)/tsan/driver
	@for io in io_uring threads io_uring threads; do \
	  echo "== $< (TSan, VMSWAP_FAULT_IO=$$io)"; \
	  VMSWAP_FAULT_IO=$$io TSAN_OPTIONS="$(TSAN_OPTS)" $<; r=$$?; \
	  if [ $$r = 77 ]; then echo "check-tsan: skipped"; exit 0; fi; \
	  [ $$r = 0 ] || exit $$r; \
	done

# QEMU (TCG) boots a Linux guest under the shim and swaps it out and in
# (tests/qemu/). Installs qemu-system-x86 and busybox-static as root and
# caches a Debian kernel and an initramfs in build/qemu/.
.PHONY: check-qemu demo-qemu
check-qemu: all
	@tests/qemu/check.sh

demo-qemu: all
	@tests/qemu/demo.sh

# Benchmark (tests/bench/README.md): vmswap against this machine's limits
# and the kernel's own swap, measured in the same run. Prints one table and
# writes build/bench/results.json. As root, about 3-4 minutes for 1 GiB.
BENCH_SRCS := $(filter-out tests/bench/probe.c,$(wildcard tests/bench/*.c))
.PHONY: bench
$(B)/bench/vmswap-bench: $(BENCH_SRCS) tests/bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(BENCH_SRCS) $(LDLIBS) -lm

$(B)/bench/vmprobe: tests/bench/probe.c tests/bench/util.c tests/bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/bench/probe.c tests/bench/util.c -lm

bench: all $(B)/bench/vmswap-bench $(B)/bench/vmprobe
	@tests/bench/run.sh $(B)

# A short bench for CI: every part runs and every target gets a value, or
# a part says why it was skipped (not root, no swapon). No number is judged.
.PHONY: check-bench
check-bench: all $(B)/bench/vmswap-bench $(B)/bench/vmprobe
	@BENCH_SIZE=128M BENCH_PROBE_SIZE=64M BENCH_REPS=1 BENCH_SAMPLES=200 BENCH_STRICT=1 \
	  tests/bench/run.sh $(B)

# Fuzzing (tests/fuzz/): the control-line parser and the wire-protocol
# check. `make check` replays the kept corpora under ASan+UBSan (gcc);
# `make fuzz` runs each target with libFuzzer (clang) for FUZZ_SECONDS
# and merges what it found into tests/fuzz/corpus/<target>/.
FUZZ_TARGETS := cmd proto
FUZZ_SECONDS ?= 600
fuzz_srcs = tests/fuzz/fuzz_$(1).c $(if $(filter cmd,$(1)),helper/state/cmd.c)
.PHONY: fuzz check-fuzz
$(B)/fuzz/replay-%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c helper/state/cmd.c helper/state/cmd.h include/vmswap/proto.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) $(LDFLAGS) -o $@ $(call fuzz_srcs,$*) tests/fuzz/replay.c

$(B)/fuzz/fuzz-%: tests/fuzz/fuzz_%.c helper/state/cmd.c helper/state/cmd.h include/vmswap/proto.h
	@mkdir -p $(dir $@)
	clang -O1 -g -std=gnu11 -Iinclude -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-o $@ $(call fuzz_srcs,$*)

check-fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz/replay-%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  printf '== fuzz corpus %s: ' $$t; $(B)/fuzz/replay-$$t tests/fuzz/corpus/$$t; done

fuzz:
	@$(MAKE) --no-print-directory deps TOOLS_NEEDED=clang:clang
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz-%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(B)/fuzz/found-$$t tests/fuzz/corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(B)/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/crash-$$t- $(B)/fuzz/found-$$t tests/fuzz/corpus/$$t \
	    2>&1 | grep -E '^(stat::|#[0-9]+ *DONE)|ERROR|SUMMARY' ; \
	  $(B)/fuzz/fuzz-$$t -merge=1 tests/fuzz/corpus/$$t $(B)/fuzz/found-$$t 2>&1 | tail -n 1; \
	done
