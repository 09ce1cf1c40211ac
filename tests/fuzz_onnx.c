/* tests/fuzz_onnx.c: libFuzzer target for model loading, planning and running (the path test_fuzz.c exercises
 * with its own deterministic mutator).
 *
 * Build (clang; the CMake option EI_FUZZER adds -fsanitize=fuzzer-no-link,address,undefined to the library and
 * -fsanitize=fuzzer,address,undefined to this target):
 *   CC=clang cmake -S . -B build-fuzz -DEI_FUZZER=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
 *   cmake --build build-fuzz -j2 --target fuzz_onnx
 * Run (seed corpus: the backend-test models and tinycnn; -max_len bounds an input; crashes land in ./crash-*):
 *   mkdir -p fuzz-corpus
 *   for d in ../shared/onnx-tests/node/test_*; do cp $d/model.onnx fuzz-corpus/$(basename $d).onnx; done
 *   cp ~/.cache/edgeinfer/models/tinycnn.onnx fuzz-corpus/
 *   build-fuzz/tests/fuzz_onnx fuzz-corpus -max_len=65536 -rss_limit_mb=2048 -max_total_time=600 -jobs=2
 * Replay one input: build-fuzz/tests/fuzz_onnx crash-<hash>
 *
 * Each input is loaded with ei_model_load_memory (256 MB arena cap so hostile shapes are refused); a loaded model
 * is planned with shapes from ei_model_input_info (symbolic dimensions -> 1, inputs above 1 MiB skipped) and run
 * on zero-filled inputs when the plan is small. Everything is destroyed before returning, so LeakSanitizer sees
 * any leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeinfer.h"

#define MAX_INPUT_BYTES ((size_t)1 << 20)
#define MAX_RUN_ARENA ((size_t)32 << 20)
#define MAX_RUN_MACS ((int64_t)50 * 1000 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int make_inputs(const ei_model *m, ei_tensor *in, int n) {
  for (int i = 0; i < n; i++) {
    ei_value_info info;
    if (ei_model_input_info(m, i, &info)) return 0;
    in[i].dtype = info.dtype;
    in[i].rank = info.rank >= 0 ? info.rank : 1;
    size_t bytes = ei_dtype_size(info.dtype);
    for (int d = 0; d < in[i].rank; d++) {
      int64_t v = info.rank >= 0 ? info.dims[d] : -1;
      in[i].dims[d] = v >= 0 ? v : 1;
      if (in[i].dims[d] > (int64_t)MAX_INPUT_BYTES) return 0;
      bytes *= (size_t)in[i].dims[d];
      if (bytes > MAX_INPUT_BYTES) return 0;
    }
    in[i].data = calloc(1, bytes ? bytes : 1);
    if (!in[i].data) return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  ei_model_options opt;
  ei_model_options_init(&opt);
  opt.max_arena_bytes = (size_t)256 << 20;
  ei_model *m = NULL;
  if (ei_model_load_memory(data, size, NULL, &opt, &m, err, sizeof err)) {
    if (m || !err[0]) abort(); /* a failed load hands out no model and always says why */
    return 0;
  }
  int nin = ei_model_input_count(m), nout = ei_model_output_count(m);
  ei_tensor *in = calloc((size_t)nin + 1, sizeof(ei_tensor));
  ei_tensor *out = calloc((size_t)nout + 1, sizeof(ei_tensor));
  ei_session *s = NULL;
  if (in && out && !ei_session_create(m, NULL, &s, err, sizeof err) && make_inputs(m, in, nin)) {
    ei_plan_stats st;
    if (!ei_session_plan(s, nin, in, err, sizeof err) && !ei_session_plan_stats(s, &st) &&
        st.arena_bytes <= MAX_RUN_ARENA && st.macs <= MAX_RUN_MACS)
      ei_session_run(s, nin, in, nout, out, err, sizeof err);
  }
  ei_session_destroy(s);
  for (int i = 0; in && i < nin; i++) free(in[i].data);
  free(in);
  free(out);
  ei_model_destroy(m);
  return 0;
}
