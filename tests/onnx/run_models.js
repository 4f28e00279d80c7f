// Runs every models/<case>/model.onnx that test_onnx_export wrote in onnxruntime-node and
// compares its output with qnas's (expected.bin) as case.json says:
//   "float":     max |ort - qnas| <= tolerance * max |qnas|
//   "exact":     the same bits in every output (the activation probes)
//   "quantized": the same argmax in every row, and max |ort - qnas| <= output_step (one step of
//                the output format); the number of elements that differ is reported.
// Usage: node run_models.js <models folder> <folder holding node_modules/onnxruntime-node>
// Exits 77 (ctest: skipped) when onnxruntime-node is missing, unless QNAS_REQUIRE_ONNX_RUNTIMES=1.
'use strict';
const fs = require('fs');
const path = require('path');

function missing(message) {
  console.log(message);
  if (process.env.QNAS_REQUIRE_ONNX_RUNTIMES === '1') {
    console.log('QNAS_REQUIRE_ONNX_RUNTIMES=1: failing');
    process.exit(1);
  }
  process.exit(77);
}

function floats(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function main() {
  if (process.argv.length !== 4) {
    console.log('usage: node run_models.js <models folder> <onnxruntime-node folder>');
    return 2;
  }
  const [root, ortDir] = process.argv.slice(2);
  let ort;
  try {
    ort = require(path.resolve(ortDir, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    missing(`onnx_runtime: onnxruntime-node not found under ${ortDir}/node_modules (${e.message.split('\n')[0]}); ` +
            `install it with: npm install --ignore-scripts --prefix ${ortDir} onnxruntime-node`);
  }
  const cases = fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'case.json'))).sort();
  if (cases.length === 0) {
    console.log(`onnx_runtime: no cases under ${root}`);
    return 1;
  }
  let failed = 0;
  for (const name of cases) {
    const dir = path.join(root, name);
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
    const x = new ort.Tensor('float32', floats(path.join(dir, 'input.bin')), c.input_shape);
    const want = floats(path.join(dir, 'expected.bin'));
    let outputs;
    const run = async (options) => {
      const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), options);
      outputs = await session.run({ [session.inputNames[0]]: x });
      return outputs.output;
    };
    // onnxruntime's CPU provider fuses DequantizeLinear (integer weights) + MatMul/Gemm on float
    // activations into MatMulNBits, which at its default accuracy level (4) quantizes those
    // activations to int8 on the fly: level 1 computes in float32, as the ONNX graph says (and
    // qnas does). The difference under the default options is reported as well (docs/onnx.md).
    const y = await run({ extra: { session: { qdq_matmulnbits_accuracy_level: '1' } } });
    // quantized activations exposed layer by layer ("layers[i]:quantized"): the same values, or
    // at most one step of their format apart
    const layerNotes = [];
    let layersOk = true;
    for (const a of c.activations || []) {
      const got = outputs[a.output], wantA = floats(path.join(dir, a.file));
      let d = 0, n = 0;
      if (!got || got.data.length !== wantA.length) {
        layersOk = false;
        layerNotes.push(`${a.output} missing or of another size`);
        continue;
      }
      for (let i = 0; i < wantA.length; ++i) {
        const e = Math.abs(got.data[i] - wantA[i]);
        if (!(e <= d)) d = e;
        if (e !== 0) ++n;
      }
      if (!(d <= a.step)) layersOk = false;
      layerNotes.push(`${a.output}: ${n} of ${wantA.length} differ, max ${d / a.step} steps`);
    }
    const yDefault = await run({});
    let defaultDiff = 0;
    for (let i = 0; i < want.length; ++i) defaultDiff = Math.max(defaultDiff, Math.abs(yDefault.data[i] - want[i]));
    const shapeOk = JSON.stringify(Array.from(y.dims)) === JSON.stringify(c.output_shape);
    let maxDiff = 0, maxAbs = 0, differing = 0;
    for (let i = 0; i < want.length; ++i) {
      const d = Math.abs(y.data[i] - want[i]);
      if (!(d <= maxDiff)) maxDiff = d;  // NaN propagates into a failure
      if (d !== 0) ++differing;
      maxAbs = Math.max(maxAbs, Math.abs(want[i]));
    }
    let ok = shapeOk && y.data.length === want.length;
    let detail;
    if (c.check === 'exact') {
      // bit for bit (signed zeros and all): the activation probes
      const a = new Uint32Array(y.data.buffer, y.data.byteOffset, y.data.length);
      const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
      let bits = 0;
      for (let i = 0; i < b.length; ++i) if (a[i] !== b[i]) ++bits;
      ok = ok && bits === 0;
      detail = `${bits} of ${want.length} outputs differ in their bits (max abs diff ${maxDiff})`;
    } else if (c.check === 'float') {
      const rel = maxDiff / Math.max(maxAbs, Number.MIN_VALUE);
      ok = ok && rel <= c.tolerance;
      detail = `max abs diff ${maxDiff.toExponential(3)}, relative ${rel.toExponential(3)} (tolerance ${c.tolerance})`;
    } else {
      const cols = c.output_shape[c.output_shape.length - 1], rows = want.length / cols;
      let argmaxSame = 0;
      for (let r = 0; r < rows; ++r) {
        let a = 0, b = 0;
        for (let j = 1; j < cols; ++j) {
          if (y.data[r * cols + j] > y.data[r * cols + a]) a = j;
          if (want[r * cols + j] > want[r * cols + b]) b = j;
        }
        if (a === b) ++argmaxSame;
      }
      ok = ok && argmaxSame === rows && maxDiff <= c.output_step;
      detail = `argmax equal in ${argmaxSame} of ${rows} rows, max abs diff ${maxDiff} ` +
               `(${maxDiff / c.output_step} output steps), ${differing} of ${want.length} outputs differ`;
    }
    ok = ok && layersOk;
    if (layerNotes.length) detail += `; layer by layer: ${layerNotes.join(', ')}`;
    if (!ok) ++failed;
    console.log(`${name} [${c.check}]: ${ok ? 'ok' : 'FAILED'}: ${detail}${shapeOk ? '' : `; shape ${Array.from(y.dims)} vs ${c.output_shape}`}` +
                `; with onnxruntime's default session options: max abs diff ${defaultDiff.toExponential(3)}`);
  }
  console.log(`onnx_runtime: ${cases.length - failed} of ${cases.length} models match qnas in onnxruntime-node ${ort.env.versions ? ort.env.versions.common : ''}`);
  return failed ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => { console.log(`onnx_runtime: ${e.stack || e}`); process.exit(1); });
