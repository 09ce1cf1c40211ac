/* edgeinfer: the command-line front end. */
#include <string.h>

#include "cli.h"

static const char *usage =
    "usage: edgeinfer COMMAND [options]\n"
    "commands:\n"
    "  run MODEL          run a model on inputs (npy, pb, photo) and print outputs, timing, top-K\n"
    "  inspect MODEL      inputs, outputs, ops after optimization, parameters, MACs, arena plan\n"
    "  bench MODEL        latency percentiles, images/s, peak memory\n"
    "  conformance PATH   run ONNX backend test cases\n"
    "  quantize MODEL     post-training static INT8 quantization into a QDQ ONNX model\n"
    "  serve --repo DIR   KServe v2 inference server (REST on HTTP/1.1 and HTTP/2, gRPC)\n"
    "  version            print the version and kernel level\n"
    "Run 'edgeinfer COMMAND --help' for a command's options.\n";

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
  if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
  if (!strcmp(cmd, "conformance")) return cmd_conformance(argc - 1, argv + 1);
  if (!strcmp(cmd, "quantize")) return cmd_quantize(argc - 1, argv + 1);
  if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
  if (!strcmp(cmd, "isa-levels")) { /* every kernel level this CPU can run, for tests */
    static const char *const all[] = {"ref", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "dotprod"};
    for (int i = 0; i < 7; i++)
      if (ei_set_isa(all[i], NULL, 0) == EI_OK) printf("%s\n", all[i]);
    return 0;
  }
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("edgeinfer %s (kernels: %s)\n", EI_VERSION_STRING, ei_isa_name());
    return 0;
  }
  fprintf(stderr, "edgeinfer: unknown command '%s'\n%s", cmd, usage);
  return 2;
}
