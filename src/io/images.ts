// A data set given as a folder of images (PNG, JPEG, WebP, TIFF), for users without NumPy arrays.
// Images are decoded and preprocessed chunk by chunk with sharp (libvips: the maintained native
// image library of the npm ecosystem, an optional dependency loaded only here): resize the shorter
// side, centre-crop, scale to [0, 1], then (v − mean) / std per channel, giving NCHW float32.
// Labels come from --y (.npy) or from class subfolders (sorted names = class indices); maps from one
// array or a folder with one .npy per image (same base name).
import { readdirSync, statSync } from 'node:fs'
import { basename, extname, join } from 'node:path'

import { XaiEvalError } from '../errors.js'
import type { Source } from '../job.js'
import { NpySource } from './npy.js'

const IMAGE = /\.(png|jpe?g|webp|tiff?)$/i

export interface Preprocess {
  /** Shorter side after resizing (default: no resize). */
  resize?: number
  /** Centre crop to a square of this side (default: none; images must then share one size). */
  crop?: number
  /** Per-channel mean and std after scaling to [0, 1] (default 0 and 1). */
  mean?: number[]
  std?: number[]
  /** 1 (grey) or 3 (RGB) channels (default 3). */
  channels?: 1 | 3
}

type Sharp = typeof import('sharp')['default']

async function loadSharp(): Promise<Sharp> {
  try {
    return (await import('sharp')).default as unknown as Sharp
  } catch (e) {
    throw new XaiEvalError(
      'INVALID_OPTION',
      'x',
      `image folders need the optional dependency sharp (npm install sharp): ${(e as Error).message}`,
    )
  }
}

/** Image files of `dir` with their labels: class subfolders (sorted) when there are any, else the files. */
export function listImages(dir: string): { files: string[]; labels?: Int32Array; classes?: string[] } {
  let entries: string[]
  try {
    entries = readdirSync(dir).sort()
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'x', `cannot read the image folder ${dir}: ${(e as Error).message}`)
  }
  const classes = entries.filter((e) => statSync(join(dir, e)).isDirectory())
  if (classes.length > 0) {
    const files: string[] = []
    const labels: number[] = []
    classes.forEach((c, k) => {
      for (const f of readdirSync(join(dir, c)).sort()) {
        if (IMAGE.test(f)) {
          files.push(join(dir, c, f))
          labels.push(k)
        }
      }
    })
    if (files.length === 0) throw new XaiEvalError('EMPTY_INPUT', 'x', `no images in the class folders of ${dir}`)
    return { files, labels: Int32Array.from(labels), classes }
  }
  const files = entries.filter((f) => IMAGE.test(f)).map((f) => join(dir, f))
  if (files.length === 0) throw new XaiEvalError('EMPTY_INPUT', 'x', `no PNG/JPEG/WebP/TIFF images in ${dir}`)
  return { files }
}

/** Decodes and preprocesses one image to `[C, H, W]` float32. */
async function decode(sharp: Sharp, file: string, p: Required<Omit<Preprocess, 'resize' | 'crop'>> & Preprocess) {
  try {
    let img = sharp(file).removeAlpha()
    if (p.channels === 1) img = img.greyscale()
    else img = img.toColourspace('srgb')
    if (p.resize) img = img.resize({ width: p.resize, height: p.resize, fit: 'outside' })
    let { data, info } = await img.raw().toBuffer({ resolveWithObject: true })
    if (p.crop) {
      if (info.width < p.crop || info.height < p.crop) {
        throw new Error(`is ${info.width}×${info.height}, smaller than the ${p.crop} crop`)
      }
      const left = Math.floor((info.width - p.crop) / 2)
      const top = Math.floor((info.height - p.crop) / 2)
      ;({ data, info } = await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
        .extract({ left, top, width: p.crop, height: p.crop })
        .raw()
        .toBuffer({ resolveWithObject: true }))
    }
    const c = p.channels
    if (info.channels !== c) throw new Error(`decoded to ${info.channels} channels, expected ${c}`)
    const plane = info.width * info.height
    const out = new Float32Array(c * plane)
    for (let i = 0; i < plane; i++) {
      for (let ch = 0; ch < c; ch++) out[ch * plane + i] = (data[i * c + ch]! / 255 - p.mean[ch]!) / p.std[ch]!
    }
    return { values: out, height: info.height, width: info.width }
  } catch (e) {
    throw new XaiEvalError('INVALID_OPTION', 'x', `cannot read the image ${file}: ${(e as Error).message}`, { cause: e })
  }
}

/**
 * Opens an image folder as a {@link Source}. `labels` (an .npy) overrides class folders; `maps` gives
 * each method's maps: an .npy/.npz array or a folder of per-image .npy files.
 */
export async function openImages(
  dir: string,
  labels: string | undefined,
  maps: Record<string, string>,
  pre: Preprocess,
): Promise<Source & { close(): Promise<void>; xShape: number[] }> {
  const sharp = await loadSharp()
  const channels = pre.channels ?? 3
  const p = { ...pre, channels, mean: pre.mean ?? new Array(channels).fill(0), std: pre.std ?? new Array(channels).fill(1) }
  if (p.mean.length !== channels || p.std.length !== channels || p.std.some((s) => !(s > 0))) {
    throw new XaiEvalError('INVALID_OPTION', '--mean/--std', `expected ${channels} values each, std > 0`)
  }
  const { files, labels: folderLabels } = listImages(dir)
  const n = files.length
  let y = folderLabels
  if (labels !== undefined) {
    const src = await NpySource.open(labels, 'y')
    try {
      if (src.rows !== n || src.shape.length !== 1) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          'y',
          `${labels}: expected [${n}] labels (one per image of ${dir}), got [${src.shape.join(', ')}]`,
        )
      }
      y = Int32Array.from(await src.readRows(0, n))
    } finally {
      await src.close()
    }
  }
  if (!y) throw new XaiEvalError('INVALID_OPTION', '--y', `${dir} has no class subfolders: give the labels as --y labels.npy`)
  const first = await decode(sharp, files[0]!, p)
  const [h, w] = [first.height, first.width]
  const opened: NpySource[] = []
  const arrays: Record<string, NpySource> = {}
  const folders: Record<string, string> = {}
  const aChannels: Record<string, number> = {}
  try {
    for (const [m, f] of Object.entries(maps)) {
      if (statSync(f, { throwIfNoEntry: false })?.isDirectory()) {
        folders[m] = f
        const probe = await NpySource.open(join(f, `${basename(files[0]!, extname(files[0]!))}.npy`), `a ${m}`)
        aChannels[m] = probe.shape.length === 3 ? probe.shape[0]! : 1
        await probe.close()
        continue
      }
      const s = await NpySource.open(f, `a ${m}`)
      opened.push(s)
      const rest = s.shape.slice(1)
      const ok =
        s.rows === n &&
        ((rest.length === 3 && (rest[0] === 1 || rest[0] === channels) && rest[1] === h && rest[2] === w) ||
          (rest.length === 2 && rest[0] === h && rest[1] === w))
      if (!ok) {
        throw new XaiEvalError(
          'SHAPE_MISMATCH',
          `a ${m}`,
          `${f}: maps [${s.shape.join(', ')}] do not match ${n} images of ${channels}×${h}×${w}`,
        )
      }
      arrays[m] = s
      aChannels[m] = rest.length === 3 ? rest[0]! : 1
    }
  } catch (e) {
    await Promise.all(opened.map((s) => s.close()))
    throw e
  }
  const plane = channels * h * w
  return {
    n,
    rowShape: [channels, h, w],
    xShape: [n, channels, h, w],
    methods: Object.keys(maps),
    aChannels,
    async read(start, end) {
      const x = new Float32Array((end - start) * plane)
      for (let i = start; i < end; i++) {
        const img = await decode(sharp, files[i]!, p)
        if (img.height !== h || img.width !== w) {
          throw new XaiEvalError(
            'SHAPE_MISMATCH',
            'x',
            `${files[i]} is ${img.width}×${img.height} after preprocessing, ${files[0]} is ${w}×${h}: give --resize/--crop`,
          )
        }
        x.set(img.values, (i - start) * plane)
      }
      const a: Record<string, Float32Array> = {}
      for (const m of Object.keys(maps)) {
        if (arrays[m]) a[m] = (await arrays[m].readRows(start, end)) as Float32Array
        else {
          const size = aChannels[m]! * h * w
          const out = new Float32Array((end - start) * size)
          for (let i = start; i < end; i++) {
            const file = join(folders[m]!, `${basename(files[i]!, extname(files[i]!))}.npy`)
            const s = await NpySource.open(file, `a ${m}`)
            try {
              if (s.rows * s.rowSize !== size)
                throw new XaiEvalError('SHAPE_MISMATCH', `a ${m}`, `${file}: [${s.shape.join(', ')}] is not ${aChannels[m]}×${h}×${w}`)
              out.set((await s.readRows(0, s.rows)) as Float32Array, (i - start) * size)
            } finally {
              await s.close()
            }
          }
          a[m] = out
        }
      }
      return { x, y: y!.subarray(start, end), a }
    },
    close: async () => {
      await Promise.all(opened.map((s) => s.close()))
    },
  }
}
