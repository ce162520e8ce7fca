// `npm run bench`: every bench in turn; results land in benches/results/*.json.
import * as coreVsJs from './core-vs-js.js'
import * as srgOverhead from './srg-overhead.js'
import * as soundness from './soundness.js'
import * as srgVsPerStep from './srg-vs-per-step.js'
import { machine } from './common.js'

const only = process.argv[2]
console.log(machine())
for (const bench of [coreVsJs, srgOverhead, srgVsPerStep, soundness]) {
  if (only && bench.name !== only) continue
  await bench.run()
}
