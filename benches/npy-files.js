// Writers of the benches' .npy and .npz inputs, block by block (never a whole array in memory):
// NumPy's version-1 header, and a zip of deflated members laid out as np.savez_compressed does.
import { closeSync, openSync, writeSync } from 'node:fs'
import { crc32, deflateRawSync } from 'node:zlib'

export function npyHeader(descr, shape, fortran = false) {
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  h += `${' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64)}\n`
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head.writeUInt16LE(h.length, 8)
  return Buffer.concat([head, Buffer.from(h, 'latin1')])
}

/** The .npy bytes of n rows tiled from `tile`, in blocks (never the whole array in memory). */
export function* npyBlocks(descr, shape, tile, rowBytes) {
  yield npyHeader(descr, shape)
  const tileBytes = Buffer.from(tile.buffer, tile.byteOffset, tile.byteLength)
  const block = Buffer.concat(Array.from({ length: 16 }, () => tileBytes))
  const blockRows = block.length / rowBytes
  for (let done = 0; done < shape[0]; done += blockRows) yield block.subarray(0, Math.min(blockRows, shape[0] - done) * rowBytes)
}

export function writeNpy(path, blocks) {
  const fd = openSync(path, 'w')
  for (const b of blocks) writeSync(fd, b)
  closeSync(fd)
}

/**
 * A zip of deflated members written block by block, as np.savez_compressed lays it out (one
 * `NAME.npy` per array, no zip64: members under 4 GiB). Each block is deflated on its own
 * (a full flush), so the member is one valid deflate stream without holding it in memory.
 */
export function writeNpz(path, members) {
  const fd = openSync(path, 'w')
  let offset = 0
  const put = (b) => {
    writeSync(fd, b)
    offset += b.length
  }
  const fields = (size, values) => {
    const b = Buffer.alloc(size)
    for (const [at, width, v] of values) width === 2 ? b.writeUInt16LE(v, at) : b.writeUInt32LE(v >>> 0, at)
    return b
  }
  const central = []
  for (const [name, blocks] of Object.entries(members)) {
    const file = Buffer.from(`${name}.npy`)
    const start = offset
    // Sizes and CRC follow the data (general-purpose flag bit 3); readers take them from the central directory.
    put(
      fields(30, [
        [0, 4, 0x04034b50],
        [4, 2, 20],
        [6, 2, 8],
        [8, 2, 8],
        [12, 2, 33],
        [26, 2, file.length],
      ]),
    )
    put(file)
    let crc = 0
    let size = 0
    let packed = 0
    const list = [...blocks]
    list.forEach((b, i) => {
      crc = crc32(b, crc)
      size += b.length
      const z = deflateRawSync(b, { finishFlush: i === list.length - 1 ? 4 : 3 }) // Z_FINISH last, else Z_FULL_FLUSH
      packed += z.length
      put(z)
    })
    put(
      fields(16, [
        [0, 4, 0x08074b50],
        [4, 4, crc],
        [8, 4, packed],
        [12, 4, size],
      ]),
    )
    central.push(
      Buffer.concat([
        fields(46, [
          [0, 4, 0x02014b50],
          [4, 2, 20],
          [6, 2, 20],
          [8, 2, 8],
          [10, 2, 8],
          [14, 2, 33],
          [16, 4, crc],
          [20, 4, packed],
          [24, 4, size],
          [28, 2, file.length],
          [42, 4, start],
        ]),
        file,
      ]),
    )
  }
  const cd = Buffer.concat(central)
  const cdOffset = offset
  put(cd)
  put(
    fields(22, [
      [0, 4, 0x06054b50],
      [8, 2, central.length],
      [10, 2, central.length],
      [12, 4, cd.length],
      [16, 4, cdOffset],
    ]),
  )
  closeSync(fd)
}
