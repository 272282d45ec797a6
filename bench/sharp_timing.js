// The timing loop of the sharp benchmark scripts, with examples/bench.rs's
// JSON: one untimed warm-up pass, then `passes` timed ones, one conversion at
// a time; OUTDIR=dir writes the last pass's outputs as <stem>.<ext>.
const fs = require('fs');
const path = require('path');

async function measure(conv, files, passes, ext) {
  const inputs = files.map((f) => fs.readFileSync(f));
  for (const b of inputs) await conv(b);
  const cpuNow = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
  const times = [], cpus = [], last = new Array(inputs.length);
  const t0 = process.hrtime.bigint(), c0 = cpuNow();
  for (let k = 0; k < passes; k++) {
    for (let i = 0; i < inputs.length; i++) {
      const t = process.hrtime.bigint(), c = cpuNow();
      last[i] = await conv(inputs[i]);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      cpus.push(cpuNow() - c);
    }
  }
  const total = Number(process.hrtime.bigint() - t0) / 1e9, cpuTotal = (cpuNow() - c0) / 1e3;
  if (process.env.OUTDIR) {
    fs.mkdirSync(process.env.OUTDIR, { recursive: true });
    files.forEach((f, i) => fs.writeFileSync(path.join(process.env.OUTDIR, path.parse(f).name + '.' + ext), last[i]));
  }
  console.log(JSON.stringify({ n: times.length, total_s: total, cpu_s: cpuTotal, times_ms: times, cpu_ms: cpus,
    out_bytes: last.map((b) => b.length), max_rss_kib: Math.round(process.resourceUsage().maxRSS) }));
}

module.exports = { measure };
