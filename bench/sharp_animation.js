#!/usr/bin/env node
// Animated GIF benchmark, sharp's side (prebuilt libvips: cgif + libimagequant).
//   node sharp_animation.js make OUTDIR FILE...   builds the inputs: per photo a 480×320 GIF of
//                                                 12 frames panning across it, 80 ms each, looping
//   node sharp_animation.js gif|webp PASSES FILE... half of each side (fill, lanczos3) of every
//                                                 frame, written as animated GIF or WebP (quality 80),
//                                                 same JSON as examples/bench.rs
// One conversion at a time, concurrency 1, cache off. OUTDIR=dir writes the last pass's outputs.
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

sharp.concurrency(1);
sharp.cache(false);
const W = 480, H = 320, FRAMES = 12;

async function make(outdir, files) {
  fs.mkdirSync(outdir, { recursive: true });
  for (const f of files) {
    const photo = sharp(fs.readFileSync(f)).rotate();
    const m = await photo.metadata();
    const scale = Math.max(W * 1.5 / m.width, H / m.height);
    const big = await photo.resize(Math.ceil(m.width * scale), Math.ceil(m.height * scale)).raw().toBuffer({ resolveWithObject: true });
    const step = Math.floor((big.info.width - W) / (FRAMES - 1));
    const frames = [];
    for (let i = 0; i < FRAMES; i++) {
      frames.push(await sharp(big.data, { raw: big.info }).extract({ left: i * step, top: 0, width: W, height: H }).raw().toBuffer());
    }
    const strip = Buffer.concat(frames);
    const raw = { width: W, height: H * FRAMES, channels: big.info.channels, pageHeight: H };
    const gif = await sharp(strip, { raw }).gif({ loop: 0, delay: new Array(FRAMES).fill(80) }).toBuffer();
    fs.writeFileSync(path.join(outdir, path.parse(f).name + '.gif'), gif);
  }
}

async function main() {
  const [mode, a, ...files] = process.argv.slice(2);
  if (mode === 'make') return make(a, files);
  const passes = parseInt(a, 10);
  const conv = async (buf) => {
    const m = await sharp(buf, { animated: true }).metadata();
    const ph = m.pageHeight || m.height;
    const p = sharp(buf, { animated: true }).resize(Math.round(m.width / 2), Math.round(ph / 2), { fit: 'fill', kernel: 'lanczos3' });
    return mode === 'gif' ? p.gif().toBuffer() : p.webp({ quality: 80 }).toBuffer();
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
    files.forEach((f, i) => fs.writeFileSync(path.join(process.env.OUTDIR, path.parse(f).name + '.' + mode), last[i]));
  }
  console.log(JSON.stringify({ n: times.length, total_s: total, cpu_s: cpuTotal, times_ms: times, cpu_ms: cpus,
    out_bytes: last.map((b) => b.length), max_rss_kib: Math.round(process.resourceUsage().maxRSS) }));
}
main();
