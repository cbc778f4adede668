// Drives an Elasticsearch-compatible node (ES_URL) with the official
// JavaScript client the way applications use it: the bulk helper, the
// scroll helpers, a point in time with search_after, msearch,
// update_by_query and an update returning _source. It prints one line per
// step and exits non-zero at the first step whose result is wrong.
// Run by jsclient_test.go; it uses only the index named in ES_INDEX.
import { Client } from '@elastic/elasticsearch'
import assert from 'node:assert/strict'

const url = process.env.ES_URL
const index = process.env.ES_INDEX
if (!url || !index) {
  console.error('set ES_URL and ES_INDEX')
  process.exit(2)
}
const client = new Client({ node: url })
const N = 1234

async function step (name, fn) {
  try {
    await fn()
    console.log(`ok ${name}`)
  } catch (err) {
    const body = err.meta && err.meta.body ? ' ' + JSON.stringify(err.meta.body) : ''
    console.error(`FAIL ${name}: ${err.stack || err}${body}`)
    process.exit(1)
  }
}

await step('info', async () => {
  const info = await client.info()
  assert.equal(info.version.number.split('.')[0], '8')
})

await step('indices.create', async () => {
  await client.indices.create({
    index,
    mappings: { properties: { n: { type: 'long' }, grp: { type: 'keyword' }, title: { type: 'text' } } }
  })
})

await step('helpers.bulk', async () => {
  const docs = Array.from({ length: N }, (_, i) => ({ id: String(i), n: i, grp: 'g' + (i % 4), title: `document number ${i}` }))
  const stats = await client.helpers.bulk({
    datasource: docs,
    flushBytes: 16 * 1024,
    onDocument (doc) { return { index: { _index: index, _id: doc.id } } },
    onDrop (d) { throw new Error('dropped ' + JSON.stringify(d)) },
    refreshOnCompletion: true
  })
  assert.equal(stats.total, N)
  assert.equal(stats.successful, N)
  assert.equal(stats.failed, 0)
  const count = await client.count({ index })
  assert.equal(count.count, N)
})

await step('helpers.scrollDocuments', async () => {
  const seen = new Set()
  for await (const doc of client.helpers.scrollDocuments({ index, size: 100, query: { match_all: {} } })) {
    assert.ok(!seen.has(doc.id), 'document returned twice: ' + doc.id)
    seen.add(doc.id)
  }
  assert.equal(seen.size, N)
})

await step('helpers.scrollSearch sorted by _doc', async () => {
  let hits = 0
  let pages = 0
  for await (const result of client.helpers.scrollSearch({ index, size: 250, sort: ['_doc'] })) {
    assert.equal(result.body.hits.total.value, N)
    hits += result.body.hits.hits.length
    pages++
  }
  assert.equal(hits, N)
  assert.equal(pages, Math.ceil(N / 250))
})

await step('point in time with search_after', async () => {
  const pit = await client.openPointInTime({ index, keep_alive: '1m' })
  // Written after the point in time opened: not seen through it.
  await client.index({ index, id: 'late', document: { n: -1, grp: 'g0' }, refresh: true })
  let id = pit.id
  let after
  const seen = new Set()
  for (;;) {
    const res = await client.search({
      pit: { id, keep_alive: '1m' },
      size: 100,
      sort: [{ grp: 'asc' }, { n: 'desc' }],
      search_after: after
    })
    id = res.pit_id
    if (res.hits.hits.length === 0) break
    for (const h of res.hits.hits) {
      assert.ok(!seen.has(h._id), 'hit returned twice: ' + h._id)
      seen.add(h._id)
    }
    after = res.hits.hits[res.hits.hits.length - 1].sort
    assert.equal(after.length, 3, 'sort values with the _shard_doc tiebreaker')
  }
  assert.equal(seen.size, N)
  assert.ok(!seen.has('late'))
  const closed = await client.closePointInTime({ id })
  assert.equal(closed.succeeded, true)
  assert.equal(closed.num_freed, 1)
})

await step('msearch', async () => {
  const res = await client.msearch({
    searches: [
      { index }, { query: { term: { grp: 'g1' } }, size: 1 },
      { index: index + '-missing' }, { query: { match_all: {} } },
      { index }, { size: 0, aggs: { grps: { terms: { field: 'grp' } } } }
    ]
  })
  assert.equal(res.responses.length, 3)
  assert.equal(res.responses[0].status, 200)
  assert.equal(res.responses[0].hits.total.value, Math.floor(N / 4) + (N % 4 > 1 ? 1 : 0))
  assert.equal(res.responses[1].status, 404)
  assert.equal(res.responses[1].error.type, 'index_not_found_exception')
  assert.equal(res.responses[2].aggregations.grps.buckets.length, 4)
})

await step('helpers.msearch', async () => {
  const m = client.helpers.msearch()
  const res = await m.search({ index }, { query: { ids: { values: ['1', '2', '3'] } } })
  assert.equal(res.body.hits.total.value, 3)
  m.stop()
})

await step('updateByQuery', async () => {
  const res = await client.updateByQuery({ index, query: { term: { grp: 'g2' } }, refresh: true, conflicts: 'proceed' })
  const want = Math.floor(N / 4) + (N % 4 > 2 ? 1 : 0)
  assert.equal(res.total, want)
  assert.equal(res.updated, want)
  assert.equal(res.failures.length, 0)
  const doc = await client.get({ index, id: '2' })
  assert.equal(doc._version, 2)
})

await step('update with _source', async () => {
  const res = await client.update({ index, id: '7', doc: { extra: true }, _source: true })
  assert.equal(res.result, 'updated')
  assert.deepEqual(res.get._source, { id: '7', n: 7, grp: 'g3', title: 'document number 7', extra: true })
})

await step('indices.delete', async () => {
  await client.indices.delete({ index })
})
await client.close()
