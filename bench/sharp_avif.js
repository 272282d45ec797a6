#!/usr/bin/env node
// sharp's AVIF output, same interface as examples/bench.rs: fit within 320×320
// (never enlarged) or half, lanczos3, then .avif({quality, effort}) with sharp's
// defaults unless QUALITY / EFFORT are set (sharp: quality 50, effort 4 = libaom
// cpu-used 5, 4:2:0). One conversion at a time, concurrency 1, cache off.
// usage: node sharp_avif.js fit320|half PASSES FILE...   (OUTDIR=dir writes <stem>.avif)
const sharp = require('sharp');
const { measure } = require('./sharp_timing');

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
  await measure(conv, files, passes, 'avif');
}
main();
