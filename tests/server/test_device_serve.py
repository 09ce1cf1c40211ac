"""tests/server/test_device_serve.py: the device profile of `edgeinfer serve` through GET /metrics.

A fake sysfs tree of a Raspberry Pi 5 (--sysfs-root): the exact device lines; the sampler thread
(--device-interval 0.2) picks up a new temperature; --perf-counters off leaves the per-model counters out and
--no-probe the copy bandwidth; with the counters on, after N requests the version's task-clock is there and grows;
the start-up line names the missing sources; `promtool check metrics` passes; `edgeinfer bench` prints the profile.

usage: test_device_serve.py EDGEINFER SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverlib import Server, check, done, make_repo  # noqa: E402

EXE, SRC = sys.argv[1], sys.argv[2]


def make_pi5(root):
    def put(rel, text):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    put("class/thermal/thermal_zone0/type", "cpu-thermal\n")
    put("class/thermal/thermal_zone0/temp", "85000\n")
    put("class/hwmon/hwmon0/name", "cpu_thermal\n")
    put("class/hwmon/hwmon0/temp1_input", "85000\n")
    put("devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1500000\n")
    put("devices/system/cpu/cpufreq/policy0/cpuinfo_max_freq", "2400000\n")
    for c in range(4):
        os.makedirs(os.path.join(root, "devices/system/cpu/cpu%d" % c), exist_ok=True)
        os.symlink("../cpufreq/policy0", os.path.join(root, "devices/system/cpu/cpu%d/cpufreq" % c))
    put("devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled", "50005\n")


def scrape(srv):
    st, _, body = srv.h1("GET", "/metrics")
    check(st == 200, "GET /metrics 200")
    return body.decode()


def value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line[len(series) + 1:])
    return None


def infer(srv, n):
    x = [0.25] * 784
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": x}]})
    ok = 0
    for _ in range(n):
        st, _, _ = srv.h1("POST", "/v2/models/fashion/infer", body=body.encode(),
                          headers={"Content-Type": "application/json"})
        ok += st == 200
    check(ok == n, "%d inferences answered" % n)


def main():
    tmp = tempfile.mkdtemp(prefix="ei-device-serve-")
    try:
        repo = os.path.join(tmp, "repo")
        make_repo(SRC, repo)
        root = os.path.join(tmp, "pi5")
        make_pi5(root)

        # counters off, no probe
        srv = Server(EXE, repo, tmp, "--sysfs-root", root, "--device-interval", "0.2", "--perf-counters", "off",
                     "--no-probe", "--model-control", "none")
        try:
            infer(srv, 3)
            t = scrape(srv)
            for line in [
                'ei_device_temperature_celsius{zone="cpu-thermal",source="thermal"} 85',
                'ei_device_cpu_frequency_hertz{cpu="0"} 1500000000',
                'ei_device_cpu_frequency_hertz{cpu="3"} 1500000000',
                'ei_device_cpu_max_frequency_hertz{cpu="2"} 2400000000',
                'ei_device_throttled{flag="under_voltage"} 1',
                'ei_device_throttled{flag="throttled"} 1',
                'ei_device_throttled_since_boot{flag="arm_frequency_capped"} 0',
                'ei_device_feature_supported{feature="thermal"} 1',
                'ei_device_feature_supported{feature="cpufreq"} 1',
                'ei_device_feature_supported{feature="throttle"} 1',
                'ei_device_feature_supported{feature="perf_hw"} 0',
                'ei_device_feature_supported{feature="dram_bw"} 0',
            ]:
                check(line in t.splitlines(), "line: " + line)
            check(t.count("ei_device_temperature_celsius{") == 1, "the hwmon view of cpu-thermal is not repeated")
            check("ei_model_task_clock_seconds_total" not in t and "ei_model_cpu_cycles_total" not in t,
                  "--perf-counters off: no per-model counters")
            check("ei_device_copy_bandwidth_bytes_per_second" not in t, "--no-probe: no copy bandwidth")
            check(value(t, 'ei_model_planned_bytes_per_inference{model="fashion",version="1"}') > 500000,
                  "planned bytes per inference (estimate)")
            with open(os.path.join(root, "class/thermal/thermal_zone0/temp"), "w") as f:
                f.write("61500\n")
            seen = False
            t0 = time.monotonic()
            while not seen and time.monotonic() - t0 < 10:
                seen = 'ei_device_temperature_celsius{zone="cpu-thermal",source="thermal"} 61.5' in scrape(srv)
                time.sleep(0.05)
            check(seen, "the sampler thread picks up the new temperature")
            if shutil.which("promtool"):
                p = subprocess.run(["promtool", "check", "metrics"], input=t.encode(), capture_output=True)
                check(p.returncode == 0, "promtool check metrics: %s" % (p.stdout + p.stderr).decode().strip())
            log = srv.log_text()
            check("device profile (%s): missing perf_hw (--perf-counters off); dram_bw (" % root in log,
                  "the start-up line names the missing sources")
        finally:
            check(srv.stop() == 0, "server exits 0")

        # counters on (software events work without a PMU), probe on, the real /sys
        srv = Server(EXE, repo, tmp, "--model-control", "none")
        try:
            infer(srv, 4)
            t1 = scrape(srv)
            series = 'ei_model_task_clock_seconds_total{model="fashion",version="1"}'
            a = value(t1, series)
            sw = "perf_sw (" not in srv.log_text()
            if sw:
                check(a is not None and a > 0, "task-clock of the version after 4 requests: %s" % a)
                check(value(t1, 'ei_model_context_switches_total{model="fashion",version="1"}') is not None,
                      "context switches of the version")
                infer(srv, 4)
                b = value(scrape(srv), series)
                check(b is not None and b > a, "task-clock grows with requests (%s -> %s)" % (a, b))
            else:
                print("skip: software perf events are not available here")
            bw = value(t1, "ei_device_copy_bandwidth_bytes_per_second")
            t0 = time.monotonic()
            while bw is None and time.monotonic() - t0 < 10:  # the probe runs on the sampler thread
                time.sleep(0.1)
                bw = value(scrape(srv), "ei_device_copy_bandwidth_bytes_per_second")
            check(bw is not None and bw > 1e6, "copy bandwidth %s" % bw)
            check("device profile (/sys)" in srv.log_text(), "start-up line")
        finally:
            check(srv.stop() == 0, "server exits 0")

        # bench prints the same profile
        p = subprocess.run([EXE, "bench", os.path.join(SRC, "models", "fashion_mnist.onnx"), "--threads", "2",
                            "--iters", "20", "--no-probe", "--sysfs-root", root], capture_output=True, text=True)
        out = p.stdout
        check(p.returncode == 0, "bench exits 0")
        check("temperature: cpu-thermal 61.5 C" in out, "bench: temperature")
        check("cpu0 1500 MHz (max 2400 MHz)" in out, "bench: frequency")
        check("throttling: 0x50005 (now: under_voltage throttled; since boot: under_voltage throttled)" in out,
              "bench: throttling")
        check("features: thermal 1, cpufreq 1, throttle 1" in out, "bench: features")
        check("task-clock" in out and ("IPC" in out or "not available" in out), "bench: counters of the runs")
        print(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done()


main()
