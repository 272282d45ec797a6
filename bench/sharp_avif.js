#!/usr/bin/env node
// sharp's AVIF output, same interface as examples/bench.rs: fit within 320×320
// (never enlarged) or half, lanczos3, then .avif({quality, effort}) with sharp's
// defaults unless QUALITY / EFFORT are set (sharp: quality 50, effort 4 = libaom
// cpu-used 5, 4:2:0). One conversion at a time, concurrency 1, cache off.
// usage: node sharp_avif.js fit320|half PASSES FILE...   (OUTDIR=dir writes <stem>.avif)
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

sharp.concurrency(1);
sharp.cache(false);
const quality = parseInt(process.env.QUALITY || '50', 10);
const effort = parseInt(process.env.EFFORT || '4', 10);

async function main() {
  const [task, passesS, ...files] = process.argv.slice(2);
  const passes = parseInt(passesS, 10);
  const conv = async (buf) => {
    let p;
    if (task === 'fit320') {
      p = sharp(buf).resize(320, 320, { fit: 'inside', kernel: 'lanczos3', withoutEnlargement: true });
    } else {
      const m = await sharp(buf).metadata();
      p = sharp(buf).resize(Math.round(m.width / 2), Math.round(m.height / 2), { fit: 'fill', kernel: 'lanczos3' });
    }
    return p.avif({ quality, effort, chromaSubsampling: '4:2:0' }).toBuffer();
  };
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
    files.forEach((f, i) => fs.writeFileSync(path.join(process.env.OUTDIR, path.parse(f).name + '.avif'), last[i]));
  }
  console.log(JSON.stringify({ n: times.length, total_s: total, cpu_s: cpuTotal, times_ms: times, cpu_ms: cpus,
    out_bytes: last.map((b) => b.length) }));
}
main();
