// `npm run bench`: every bench in turn; results land in benches/results/*.json.
import * as coreVsJs from './core-vs-js.js'
import * as explainers from './explainers.js'
import * as imputeBench from './impute.js'
import * as randomization from './randomization.js'
import * as localisation from './localisation.js'
import * as srgOverhead from './srg-overhead.js'
import * as soundness from './soundness.js'
import * as srgVsPerStep from './srg-vs-per-step.js'
import * as distributed from './distributed.js'
import * as compare from './compare.js'
import * as peers from './peers.js'
import * as overhead from './overhead.js'
import * as tuning from './tuning.js'
import { machine } from './common.js'

const only = process.argv[2]
console.log(machine())
for (const bench of [
  coreVsJs,
  srgOverhead,
  srgVsPerStep,
  imputeBench,
  soundness,
  explainers,
  randomization,
  localisation,
  distributed,
  compare,
  overhead,
  tuning,
  peers,
]) {
  if (only && bench.name !== only) continue
  if (bench === srgOverhead) {
    // Every core busy with inference (2 single-threaded sessions on 2 cores), then one core left
    // for the row building to overlap with.
    for (const workers of [2, 1]) await bench.run({ workers })
  } else await bench.run()
}
