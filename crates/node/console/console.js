// The gmchain web console: an explorer, public verification of a document, and auditor pages,
// over the REST routes of docs/rest.md only (same origin; no other request). Pages are built
// with DOM calls (never HTML strings), so nothing the node returns is parsed as markup.

import { b64, hex, sm3, unhex } from './gm.js';
import { decodeBlock, decodeCertificate, decodeReceipt, decodeSignedTx, merkleRoot, parseCertificate, readGenesis, validatorSet } from './codec.js';
import { checkCommit, verifyReceipt } from './verify.js';
import { STRINGS } from './i18n.js';

const LANG_KEY = 'gmchain.console.lang';
const GENESIS_KEY = 'gmchain.console.genesis-hash';
/** The console hashes documents up to this size in memory: sm-crypto copies the input into a
 * plain array (8 bytes an element), so 32 MiB costs about 300 MB and 2 s in Chromium on a PC. */
const MAX_DOCUMENT = 32 * 1024 * 1024;

let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh-CN';
let live = null; // the EventSource of the explorer page

function t(key, ...args) {
  const s = (STRINGS[lang] && STRINGS[lang][key]) ?? STRINGS['zh-CN'][key] ?? key;
  return typeof s === 'function' ? s(...args) : s;
}

// --- DOM helpers ---

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const code = (s) => h('code', { class: 'hash' }, s);
const link = (href, text) => h('a', { href }, text);
const main = () => document.getElementById('main');

function kv(rows) {
  return h('dl', { class: 'kv' }, rows.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function table(columns, rows) {
  return h('table', { class: 'list' },
    h('thead', null, h('tr', null, columns.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((cell, i) => h('td', { 'data-label': columns[i] }, cell))))));
}

const section = (title, ...body) => h('section', { class: 'card' }, h('h2', null, title), ...body);
const note = (text, kind = 'info') => h('p', { class: `note ${kind}` }, text);

function when(ms) {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}

function render(...nodes) {
  main().replaceChildren(...nodes);
}

// --- The API ---

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.code ? `${problem.code}: ${problem.detail || problem.title || ''}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'omit', cache: 'no-store' });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) throw new ApiError(res.status, body);
  if (body === null) throw new ApiError(res.status, { code: 'CONSOLE_NOT_JSON', detail: path });
  return body;
}

const failure = (e) => note(`${t('error')}: ${e.message}`, 'bad');

// --- Genesis: fetched from the node, trusted only when it hashes to the published hash ---

let genesisCache = null;

async function genesis() {
  if (!genesisCache) {
    const res = await fetch('/v1/genesis', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    let text = await res.text();
    const v = JSON.parse(text);
    // The file itself; or, should the gateway wrap it, the file as a string field.
    if (!v.chain_id && typeof (v.genesis_json ?? v.genesis) === 'string') text = v.genesis_json ?? v.genesis;
    genesisCache = readGenesis(text);
  }
  return genesisCache;
}

const published = () => localStorage.getItem(GENESIS_KEY) || '';

/** {state: 'unset'|'match'|'mismatch'|'error', genesis?} */
async function trust() {
  try {
    const g = await genesis();
    const p = published();
    if (!p) return { state: 'unset', genesis: g };
    return { state: hex(g.hash) === p ? 'match' : 'mismatch', genesis: g };
  } catch (e) {
    return { state: 'error', error: e };
  }
}

async function showTrust() {
  const el = document.getElementById('trust');
  const s = await trust();
  const text = {
    unset: t('trust.unset'),
    match: t('trust.match', published()),
    mismatch: t('trust.mismatch'),
    error: `${t('trust.error')}: ${s.error?.message}`,
  }[s.state];
  el.className = `banner ${s.state}`;
  el.replaceChildren(h('span', null, text), ' ', s.state === 'match' ? '' : link('#/genesis', t('trust.check')));
  return s;
}

// --- Pages ---

function searchForm() {
  const input = h('input', { type: 'search', id: 'search', placeholder: t('search.placeholder'), 'aria-label': t('search.placeholder'), autocomplete: 'off' });
  const form = h('form', { class: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    const q = input.value.trim().toLowerCase();
    if (/^[0-9]+$/.test(q)) location.hash = `#/block/${q}`;
    else if (/^[0-9a-f]{64}$/.test(q)) location.hash = `#/find/${q}`;
    else input.setCustomValidity(t('search.invalid'));
  } }, input, h('button', { type: 'submit' }, t('search.go')));
  input.addEventListener('input', () => input.setCustomValidity(''));
  return form;
}

function blockRow(block, cert) {
  const hd = block.header;
  let signers = '';
  try {
    signers = cert && cert.length ? String(decodeCertificate(cert).signatures.length) : '—';
  } catch {
    signers = '?';
  }
  return [link(`#/block/${hd.height}`, hd.height), when(hd.timestamp), String(hd.tx_count), code(hex(hd.hash).slice(0, 16) + '…'), signers];
}

async function pageExplorer() {
  const status = await api('/v1/status');
  const tip = BigInt(status.height);
  const heights = [];
  for (let i = 0n; i < 10n && tip - i >= 0n; i++) heights.push(tip - i);
  const rows = await Promise.all(heights.map(async (height) => {
    try {
      const b = await api(`/v1/blocks/${height}`);
      return blockRow(decodeBlock(b64(b.block)), b64(b.certificate));
    } catch (e) {
      return [String(height), e.message, '', '', ''];
    }
  }));
  const cols = [t('block.height'), t('block.time'), t('block.txs'), t('block.hash'), t('block.signers')];
  const list = table(cols, rows);
  list.id = 'blocks';
  const liveState = h('span', { class: 'live', id: 'live' }, t('live.connecting'));
  render(
    searchForm(),
    section(t('status.title'), kv([
      [t('status.chain'), status.chain_id],
      [t('status.height'), h('span', { id: 'tip' }, status.height)],
      [t('status.tip'), code(hex(b64(status.tip_hash)))],
      [t('status.block0'), code(hex(b64(status.genesis_hash)))],
      [t('status.committed'), status.committed_txs],
      [t('status.pool'), status.pool_size],
      [t('status.version'), status.version],
    ]), note(t('status.block0.note'))),
    section(t('blocks.title'), liveState, list),
  );
  document.getElementById('status-line').textContent = `${status.chain_id} · ${t('status.height')} ${status.height}`;
  // Live updates: each new block as it is committed.
  if (typeof EventSource === 'function') {
    live = new EventSource(`/v1/blocks/stream?from_height=${tip + 1n}`);
    live.onopen = () => { liveState.textContent = t('live.on'); };
    live.onerror = () => { liveState.textContent = t('live.off'); };
    live.onmessage = (ev) => {
      try {
        const b = JSON.parse(ev.data);
        const block = decodeBlock(b64(b.block));
        const tbody = list.tBodies[0];
        const tr = h('tr', { class: 'new' }, blockRow(block, b64(b.certificate)).map((cell, i) => h('td', { 'data-label': cols[i] }, cell)));
        tbody.prepend(tr);
        while (tbody.rows.length > 20) tbody.deleteRow(-1);
        document.getElementById('tip').textContent = block.header.height;
        liveState.textContent = t('live.on');
      } catch (e) {
        liveState.textContent = `${t('live.off')}: ${e.message}`;
      }
    };
  }
}

function describeTx(stx) {
  const tx = stx.tx;
  const sender = tx.sender.certificate
    ? (() => {
      try {
        return parseCertificate(tx.sender.certificate).subject;
      } catch {
        return hex(sm3(tx.sender.certificate));
      }
    })()
    : `${t('tx.registered')} ${hex(tx.sender.registered)}`;
  return { call: `${tx.contract}.${tx.method}`, sender };
}

async function pageBlock(height) {
  const b = await api(`/v1/blocks/${encodeURIComponent(height)}`);
  const block = decodeBlock(b64(b.block));
  const hd = block.header;
  const cert = b64(b.certificate);
  const checks = [];
  // The header commits to the signed transactions it carries.
  const root = merkleRoot(block.txs.map((x) => x.entry_hash));
  checks.push(hex(root) === hex(hd.tx_root) ? t('block.txroot.ok') : t('block.txroot.bad'));
  // The certificate, against the set the node reports for this height (the receipt check
  // derives the set from genesis instead).
  let signers = [];
  if (cert.length && hd.v2) {
    try {
      const vs = await api(`/v1/validators?height=${hd.height}`);
      const set = validatorSet(vs.validators.map((v) => b64(v.certificate)));
      if (hex(set.hash) !== hex(hd.validator_set)) throw new Error(t('block.set.other'));
      signers = checkCommit(hd.chain_id, hd, decodeCertificate(cert), set);
      checks.push(t('block.cert.ok', signers.length, set.entries.length));
    } catch (e) {
      checks.push(`${t('block.cert.bad')}: ${e.message}`);
    }
  } else {
    checks.push(t('block.cert.none'));
  }
  const txRows = block.txs.map((stx, i) => {
    const d = describeTx(stx);
    return [String(i), link(`#/tx/${hex(stx.tx.id)}`, hex(stx.tx.id).slice(0, 16) + '…'), d.call, d.sender];
  });
  render(
    section(`${t('block.title')} ${hd.height}`, kv([
      [t('block.hash'), code(hex(hd.hash))],
      [t('block.time'), when(hd.timestamp)],
      [t('block.parent'), hd.height === '0' ? code(hex(hd.parent)) : link(`#/block/${BigInt(hd.height) - 1n}`, code(hex(hd.parent)))],
      [t('block.txs'), String(hd.tx_count)],
      [t('block.txroot'), code(hex(hd.tx_root))],
      [t('block.stateroot'), code(hex(hd.state_root))],
      [t('block.receiptsroot'), code(hex(hd.receipts_root))],
      [t('block.proposer'), code(hex(hd.proposer))],
      hd.v2 && [t('block.set'), code(hex(hd.validator_set))],
      [t('block.signers'), signers.length ? h('ul', null, signers.map((s) => h('li', null, s.cert.subject))) : '—'],
    ]), h('ul', { class: 'checks', id: 'block-checks' }, checks.map((c) => h('li', null, c))),
    h('nav', { class: 'pager' }, hd.height !== '0' && link(`#/block/${BigInt(hd.height) - 1n}`, `← ${t('block.prev')}`), ' ', link(`#/block/${BigInt(hd.height) + 1n}`, `${t('block.next')} →`))),
    section(t('block.txlist'), txRows.length ? table(['#', t('tx.id'), t('tx.call'), t('tx.sender')], txRows) : note(t('block.empty'))),
  );
}

function argText(a) {
  const s = new TextDecoder('utf-8', { fatal: false }).decode(a);
  return /^[\x20-\x7e\u00a0-\uffff]*$/.test(s) && !s.includes('\ufffd') ? s : hex(a);
}

async function pageTx(id) {
  const [txr, rcr] = await Promise.all([api(`/v1/tx/${id}`), api(`/v1/tx/${id}/receipt`)]);
  const stx = decodeSignedTx(b64(txr.signed_tx));
  const rc = decodeReceipt(b64(rcr.receipt));
  const d = describeTx(stx);
  const out = h('div', { id: 'receipt-check' });
  const verifyBtn = h('button', { type: 'button', id: 'verify-receipt', onclick: async () => {
    out.replaceChildren(note(t('working')));
    out.replaceChildren(await receiptReport(id, null));
  } }, t('tx.verify'));
  const download = h('button', { type: 'button', onclick: async () => {
    const p = await api(`/v1/tx/${id}/proof`);
    const url = URL.createObjectURL(new Blob([p.receipt_json], { type: 'application/json' }));
    const a = h('a', { href: url, download: `${id}.receipt.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } }, t('tx.download'));
  render(section(`${t('tx.title')}`, kv([
    [t('tx.id'), code(id)],
    [t('block.height'), link(`#/block/${txr.height}`, txr.height)],
    [t('tx.position'), String(txr.position)],
    [t('tx.call'), d.call],
    [t('tx.sender'), d.sender],
    [t('tx.args'), h('ol', { start: 0 }, stx.tx.args.map((a) => h('li', null, code(argText(a)))))],
    [t('tx.expiry'), stx.tx.expiry],
    [t('tx.status'), rc.status.success ? t('tx.success') : `${t('tx.failed')} ${rc.status.code}: ${rc.status.message}`],
    rc.fuel_used !== undefined && [t('tx.fuel'), rc.fuel_used],
    [t('tx.events'), rc.events.length ? h('ul', null, rc.events.map((e) => h('li', null, `${e.contract}.${e.name} `, code(argText(e.data))))) : '—'],
  ]), h('div', { class: 'actions' }, verifyBtn, ' ', download), out));
}

/** Fetches a transaction's receipt and verifies it in the browser; returns the report node. */
async function receiptReport(txId, digest) {
  const tr = await trust();
  if (tr.state === 'error') return failure(tr.error);
  let proof;
  try {
    proof = await api(`/v1/tx/${txId}/proof`);
  } catch (e) {
    return failure(e);
  }
  const caveat = note(t('verify.caveat'), 'info');
  // A genesis file that is not the one the operator published: nothing this node serves can
  // be verified against it (review 19, M6).
  if (tr.state === 'mismatch') {
    return h('div', { class: 'report bad', id: 'receipt-report', 'data-result': 'genesis-mismatch' },
      h('h3', null, t('verify.genesis.mismatch')), caveat);
  }
  const trustNote = tr.state === 'match'
    ? note(t('verify.genesis.ok', published()), 'good')
    : note(t(tr.state === 'mismatch' ? 'verify.genesis.mismatch' : 'verify.genesis.unset'), 'warn');
  try {
    const { steps, result } = verifyReceipt(proof.receipt_json, tr.genesis, digest);
    const verdict = tr.state === 'match' ? 'good' : 'warn';
    return h('div', { class: `report ${verdict}`, id: 'receipt-report', 'data-result': tr.state === 'match' ? 'verified' : 'unchecked-genesis' },
      h('h3', null, tr.state === 'match' ? t('verify.ok') : t('verify.ok.untrusted')),
      trustNote,
      kv([
        [t('block.height'), link(`#/block/${result.height}`, result.height)],
        [t('block.time'), when(result.timestamp_ms)],
        [t('verify.signer'), result.signer],
        [t('verify.organisation'), result.organisation],
        [t('verify.certified'), h('ul', null, result.certified_by.map((s) => h('li', null, s)))],
        [t('verify.changes'), String(result.set_changes)],
        [t('verify.steps'), h('ul', { class: 'checks' }, steps.map((s) => h('li', null, t(`step.${s}`))))],
      ]), caveat);
  } catch (e) {
    return h('div', { class: 'report bad', id: 'receipt-report', 'data-result': 'failed' },
      h('h3', null, t('verify.failed')), trustNote, note(`${e.step ? t(`step.${e.step}`) + ': ' : ''}${e.detail || e.message}`, 'bad'), caveat);
  }
}

async function readFile(file) {
  if (file.size > MAX_DOCUMENT) throw new Error(t('verify.toolarge'));
  return new Uint8Array(await file.arrayBuffer());
}

function pageVerify() {
  const result = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const input = h('input', { type: 'file', id: 'file', class: 'visually-hidden' });
  const handle = async (file) => {
    if (!file) return;
    result.replaceChildren(note(t('verify.hashing', file.name)));
    let digest;
    try {
      digest = sm3(await readFile(file));
    } catch (e) {
      result.replaceChildren(failure(e));
      return;
    }
    const head = kv([[t('verify.file'), file.name], [t('verify.size'), String(file.size)], [t('verify.sm3'), code(hex(digest))]]);
    result.replaceChildren(head, note(t('working')));
    let att;
    try {
      att = (await api(`/v1/attestations/by-digest/${hex(digest)}`)).attestation;
    } catch (e) {
      if (e.status === 404) {
        result.replaceChildren(head, h('div', { class: 'report bad', id: 'attestation', 'data-result': 'not-found' },
          h('h3', null, t('verify.notfound')), note(t('verify.notfound.note'))));
      } else {
        result.replaceChildren(head, failure(e));
      }
      return;
    }
    const id = hex(b64(att.id));
    const found = h('div', { class: 'report good', id: 'attestation', 'data-result': 'found', 'data-height': att.height },
      h('h3', null, t('verify.found')),
      kv([
        [t('block.height'), link(`#/block/${att.height}`, att.height)],
        [t('block.time'), when(att.timestamp_ms)],
        [t('verify.owner'), att.owner],
        [t('verify.kind'), att.kind || '—'],
        att.metadata && [t('verify.metadata'), att.metadata],
        [t('tx.id'), link(`#/tx/${id}`, code(id))],
      ]), note(t('verify.nodesays')));
    result.replaceChildren(head, found, note(t('working')));
    result.replaceChildren(head, found, await receiptReport(id, digest));
  };
  input.addEventListener('change', () => handle(input.files[0]));
  const drop = h('label', { for: 'file', class: 'drop', id: 'drop', tabindex: '0' },
    h('strong', null, t('verify.drop')), h('span', null, t('verify.local')));
  drop.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') input.click(); });
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    handle(ev.dataTransfer.files[0]);
  });
  render(section(t('verify.title'), note(t('verify.intro')), input, drop, result));
}

async function pageFind(hexid) {
  // A 64-hex search: a transaction, else an attestation's digest.
  try {
    await api(`/v1/tx/${hexid}`);
    location.replace(`#/tx/${hexid}`);
    return;
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  try {
    const a = (await api(`/v1/attestations/by-digest/${hexid}`)).attestation;
    location.replace(`#/tx/${hex(b64(a.id))}`);
  } catch (e) {
    if (e.status !== 404) throw e;
    render(searchForm(), note(t('search.none'), 'bad'));
  }
}

async function pageValidators() {
  const v = await api('/v1/validators');
  const rows = v.validators.map((x) => {
    let subject = '';
    try {
      subject = parseCertificate(b64(x.certificate)).subject;
    } catch {
      subject = '?';
    }
    return [x.name, subject, code(hex(b64(x.id))), x.power, when(Number(x.not_after) * 1000)];
  });
  const epochs = v.epochs.map((e) => [e.from_height, e.reason, String(e.validators), h('span', null, e.causes.map((c) => link(`#/tx/${hex(b64(c))}`, hex(b64(c)).slice(0, 12) + '… ')))]);
  const p = v.pending;
  render(
    section(t('validators.title', v.height), table([t('validators.name'), t('validators.subject'), t('validators.id'), t('validators.power'), t('validators.notafter')], rows)),
    section(t('validators.epochs', v.epoch_count), table([t('validators.from'), t('validators.reason'), t('validators.count'), t('validators.causes')], epochs)),
    p && p.kind ? section(t('validators.pending'), kv([[t('proposals.kind'), p.kind], [t('validators.effective'), p.effective], [t('proposals.id'), link(`#/proposal/${hex(b64(p.proposal_id))}`, code(hex(b64(p.proposal_id))))]])) : '',
  );
}

function proposalChange(p) {
  const c = p.validator_add || p.validator_remove || p.validator_rotate || p.policy_change || p.params_change || p.org_register || p.org_remove || p.contract_change || p.supervisor || p.supervision_freeze;
  if (!c) return '—';
  const parts = [];
  for (const [k, v] of Object.entries(c)) {
    if (k === 'certificate' || k === 'ca_certificate') {
      try {
        parts.push(`${k}: ${parseCertificate(b64(v)).subject}`);
      } catch {
        parts.push(`${k}: ?`);
      }
    } else if (k === 'crl') {
      continue;
    } else if (typeof v === 'string' && /^[A-Za-z0-9+/]{43}=$/.test(v)) {
      parts.push(`${k}: ${hex(b64(v))}`);
    } else {
      parts.push(`${k}: ${v}`);
    }
  }
  return parts.join('; ');
}

async function pageProposals() {
  const r = await api('/v1/proposals?blocks=1000');
  const rows = r.proposals.map((p) => [
    link(`#/proposal/${hex(b64(p.id))}`, hex(b64(p.id)).slice(0, 12) + '…'), p.kind, p.proposer, t(`proposals.status.${p.status}`), `${p.votes.filter((v) => v.yes).length}/${p.electorate.length}`, p.created,
  ]);
  render(section(t('proposals.title', r.from_height, r.tip),
    rows.length ? table([t('proposals.id'), t('proposals.kind'), t('proposals.proposer'), t('proposals.status'), t('proposals.votes'), t('proposals.created')], rows) : note(t('proposals.none'))));
}

async function pageProposal(id) {
  const p = await api(`/v1/proposals/${id}`);
  render(section(`${t('proposals.one')} ${p.kind}`, kv([
    [t('proposals.id'), code(hex(b64(p.id)))],
    [t('proposals.kind'), p.kind],
    [t('proposals.change'), proposalChange(p)],
    [t('proposals.proposer'), p.proposer],
    [t('proposals.created'), link(`#/block/${p.created}`, p.created)],
    [t('proposals.deadline'), p.deadline],
    [t('proposals.effective'), p.effective],
    [t('proposals.policy'), p.policy],
    [t('proposals.status'), `${t(`proposals.status.${p.status}`)}${p.status_height !== '0' ? ` @ ${p.status_height}` : ''}`],
    [t('proposals.votes'), h('ul', null, p.electorate.map((o) => {
      const v = p.votes.find((x) => x.organisation === o);
      return h('li', null, `${o}: ${v ? (v.yes ? t('proposals.yes') : t('proposals.no')) : '—'}`);
    }))],
  ])));
}

async function pageOrganisations() {
  const g = await genesis();
  const rows = g.organisations.map((o) => {
    const c = parseCertificate(o.ca);
    return [o.name, c.subject, code(hex(sm3(o.ca))), `${when(c.notBefore * 1000)} – ${when(c.notAfter * 1000)}`, o.sponsors.join(', ') || '—'];
  });
  let later = [];
  try {
    const r = await api('/v1/proposals?blocks=1000');
    later = r.proposals.filter((p) => (p.kind === 'org-register' || p.kind === 'org-remove') && p.status === 'executed')
      .map((p) => [p.kind, p.org_register?.organisation || p.org_remove?.organisation || '', p.status_height, link(`#/proposal/${hex(b64(p.id))}`, hex(b64(p.id)).slice(0, 12) + '…')]);
  } catch {
    later = [];
  }
  render(
    section(t('orgs.title'), note(t('orgs.note')), table([t('orgs.name'), t('orgs.ca'), t('orgs.fingerprint'), t('orgs.validity'), t('orgs.sponsors')], rows)),
    section(t('orgs.changes'), later.length ? table([t('proposals.kind'), t('orgs.name'), t('block.height'), t('proposals.id')], later) : note(t('orgs.nochanges'))),
  );
}

async function pageAttestations(query) {
  const params = new URLSearchParams(query || '');
  const owner = params.get('owner') || '';
  const start = params.get('start') || '0';
  const input = h('input', { type: 'text', name: 'owner', value: owner, placeholder: t('att.owner.placeholder'), 'aria-label': t('verify.owner') });
  const form = h('form', { class: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/attestations?owner=${encodeURIComponent(input.value.trim())}`;
  } }, input, h('button', { type: 'submit' }, t('search.go')));
  const body = [form];
  if (owner) {
    try {
      const r = await api(`/v1/attestations?owner=${encodeURIComponent(owner)}&start=${encodeURIComponent(start)}&limit=50`);
      const rows = r.attestations.map((a) => [link(`#/block/${a.height}`, a.height), when(a.timestamp_ms), code(hex(b64(a.digest))), a.kind || '—', link(`#/tx/${hex(b64(a.id))}`, hex(b64(a.id)).slice(0, 12) + '…')]);
      body.push(rows.length ? table([t('block.height'), t('block.time'), t('verify.sm3'), t('verify.kind'), t('tx.id')], rows) : note(t('att.none')));
      if (rows.length === 50) body.push(link(`#/attestations?owner=${encodeURIComponent(owner)}&start=${Number(start) + 50}`, t('att.more')));
    } catch (e) {
      body.push(failure(e));
    }
  } else {
    body.push(note(t('att.intro')));
  }
  render(section(t('att.title'), ...body));
}

async function logHeadRows(items) {
  const rows = [];
  for (const { what, der } of items) {
    const id = hex(sm3(der));
    try {
      const r = await api(`/v1/log-heads/${id}`);
      rows.push([what, code(id.slice(0, 16) + '…'), r.anchored ? code(hex(b64(r.head))) : t('audit.notanchored'), r.anchored ? r.seq : '—', r.anchored ? link(`#/block/${r.height}`, r.height) : '—', r.anchored ? when(r.timestamp_ms) : '—']);
    } catch (e) {
      rows.push([what, code(id.slice(0, 16) + '…'), e.message, '—', '—', '—']);
    }
  }
  return rows;
}

async function pageAudit() {
  const cols = [t('audit.log'), t('audit.cert'), t('audit.head'), t('audit.seq'), t('block.height'), t('block.time')];
  const g = await genesis();
  const caRows = await logHeadRows(g.organisations.map((o) => ({ what: `CA ${o.name}`, der: o.ca })));
  let nodeRows = [];
  try {
    const v = await api('/v1/validators');
    nodeRows = await logHeadRows(v.validators.map((x) => ({ what: x.name, der: b64(x.certificate) })));
  } catch (e) {
    nodeRows = [[t('error'), e.message, '', '', '', '']];
  }
  // The conformance report the operator publishes (GET /v1/conformance/report when configured).
  const report = h('div', { id: 'conformance' }, note(t('working')));
  const kind = h('select', { 'aria-label': t('audit.trace.kind') }, ['cert', 'org', 'contract', 'tx'].map((k) => h('option', { value: k }, k)));
  const id = h('input', { type: 'text', placeholder: t('audit.trace.id'), 'aria-label': t('audit.trace.id') });
  const traceOut = h('div');
  const trace = h('form', { class: 'search', onsubmit: async (ev) => {
    ev.preventDefault();
    traceOut.replaceChildren(note(t('working')));
    try {
      const r = await api(`/v1/supervision/trace/${encodeURIComponent(kind.value)}/${encodeURIComponent(id.value.trim())}`);
      traceOut.replaceChildren(h('pre', { class: 'json' }, JSON.stringify(r, null, 2)));
    } catch (e) {
      traceOut.replaceChildren(failure(e), note(t('audit.trace.auth')));
    }
  } }, kind, id, h('button', { type: 'submit' }, t('search.go')));
  render(
    section(t('audit.report'), report),
    section(t('audit.heads'), note(t('audit.heads.note')), h('h3', null, t('audit.ca')), table(cols, caRows), h('h3', null, t('audit.node')), table(cols, nodeRows)),
    section(t('audit.trace'), note(t('audit.trace.note')), trace, traceOut),
  );
  try {
    const res = await fetch('/v1/conformance/report', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    const bytes = new Uint8Array(await res.arrayBuffer());
    const rep = JSON.parse(new TextDecoder().decode(bytes));
    // report.json of `gmchain conformance run`: `signature.certificate` names the auditor,
    // `summary` counts the clauses by verdict (crates/conformance, conformance/README.md).
    let signer = t('audit.unsigned');
    const pem = rep && rep.signature && typeof rep.signature.certificate === 'string' ? rep.signature.certificate : null;
    if (pem) {
      try {
        signer = parseCertificate(Uint8Array.from(atob(pem.replace(/-----[A-Z ]+-----|\s/g, '')), (c) => c.charCodeAt(0))).subject;
      } catch {
        signer = '?';
      }
    }
    const sum = rep && rep.summary ? rep.summary : null;
    report.replaceChildren(kv([
      [t('verify.sm3'), code(hex(sm3(bytes)))],
      [t('audit.signer'), signer],
      [t('audit.results'), sum ? `${sum.met}/${sum.clauses} MET · ${sum.not_met} NOT MET · ${sum.not_covered} NOT COVERED` : '—'],
    ]), note(t('audit.report.note')));
  } catch (e) {
    report.replaceChildren(note(e.status === 404 ? t('audit.report.none') : `${t('error')}: ${e.message}`, 'warn'));
  }
}

async function pageGenesis() {
  const input = h('input', { type: 'text', id: 'genesis-hash', value: published(), placeholder: t('genesis.placeholder'), 'aria-label': t('genesis.published'), spellcheck: 'false', autocomplete: 'off' });
  const form = h('form', { class: 'search', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = input.value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(v)) {
      input.setCustomValidity(t('genesis.invalid'));
      input.reportValidity();
      return;
    }
    localStorage.setItem(GENESIS_KEY, v);
    await route();
  } }, input, h('button', { type: 'submit', id: 'genesis-save' }, t('genesis.save')));
  input.addEventListener('input', () => input.setCustomValidity(''));
  const forget = h('button', { type: 'button', onclick: async () => { localStorage.removeItem(GENESIS_KEY); await route(); } }, t('genesis.forget'));
  const s = await trust();
  const body = [note(t('genesis.intro')), form, published() ? forget : ''];
  if (s.genesis) {
    const g = s.genesis;
    body.push(h('div', { id: 'genesis-state', class: `report ${s.state === 'match' ? 'good' : s.state === 'mismatch' ? 'bad' : 'warn'}`, 'data-state': s.state },
      h('h3', null, t(`genesis.${s.state}`)),
      kv([
        [t('genesis.computed'), code(hex(g.hash))],
        [t('status.chain'), g.chain_id],
        [t('genesis.format'), String(g.format)],
        [t('block.time'), when(g.timestamp_ms)],
        [t('genesis.testchain'), g.test_chain ? t('yes') : t('no')],
        [t('genesis.validators'), h('ul', null, g.validators.map((v) => h('li', null, `${v.name}: ${parseCertificate(v.cert).subject}`)))],
      ])));
  } else {
    body.push(failure(s.error));
  }
  render(section(t('genesis.title'), ...body));
}

// --- Routing ---

const ROUTES = [
  [/^#?\/?$/, pageExplorer],
  [/^#\/block\/([0-9]+|latest)$/, pageBlock],
  [/^#\/tx\/([0-9a-f]{64})$/, pageTx],
  [/^#\/find\/([0-9a-f]{64})$/, pageFind],
  [/^#\/verify$/, pageVerify],
  [/^#\/validators$/, pageValidators],
  [/^#\/proposals$/, pageProposals],
  [/^#\/proposal\/([0-9a-f]{64})$/, pageProposal],
  [/^#\/organisations$/, pageOrganisations],
  [/^#\/attestations(?:\?(.*))?$/, pageAttestations],
  [/^#\/audit$/, pageAudit],
  [/^#\/genesis$/, pageGenesis],
];

function applyStatic() {
  document.documentElement.lang = lang;
  document.title = t('brand');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const btn = document.getElementById('lang');
  btn.textContent = lang === 'en' ? '中文' : 'English';
  btn.setAttribute('aria-label', t('lang.switch'));
  const here = location.hash || '#/';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('here', a.getAttribute('href') === here || (a.getAttribute('href') !== '#/' && here.startsWith(a.getAttribute('href'))));
  }
}

async function route() {
  if (live) {
    live.close();
    live = null;
  }
  applyStatic();
  document.body.dataset.ready = 'false';
  const hash = location.hash || '#/';
  const found = ROUTES.find(([re]) => re.test(hash));
  try {
    await showTrust();
    if (!found) render(note(t('notfound'), 'bad'));
    else await found[1](...hash.match(found[0]).slice(1));
  } catch (e) {
    render(failure(e));
  }
  document.body.dataset.ready = 'true';
}

function start() {
  document.getElementById('lang').addEventListener('click', () => {
    lang = lang === 'en' ? 'zh-CN' : 'en';
    localStorage.setItem(LANG_KEY, lang);
    route();
  });
  window.addEventListener('hashchange', route);
  route();
}

// The vendored scripts are `defer`: they have run before a module script (deferred too, and
// later in document order) starts.
start();

// For the browser test: the crypto the page uses, callable from the test with the same inputs
// as the Rust vectors. Read-only functions; nothing here changes the page.
export const testing = { sm3, unhex, hex };
