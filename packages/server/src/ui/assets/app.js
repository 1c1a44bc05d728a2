// The status page's script: reads the server's /ui/api/ JSON and draws it with DOM calls only
// (textContent, never HTML from data), so a name holding `<script>` is shown as text.

const TOKEN_KEY = 'tufa.token';
const SVG = 'http://www.w3.org/2000/svg';
const DAY = 86_400_000;
const STATE_TEXT = { expired: 'expired', week: '≤ 7 days', month: '≤ 30 days', fine: 'fine' };

const main = document.getElementById('main');
const login = document.getElementById('login');
const logout = document.getElementById('logout');

/** Characters that would hide, reorder or break a name on screen: shown as their code point. */
const HIDDEN =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\u3164\ufeff\ufff9-\ufffb]/gu;

/** An element with attributes and children; strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const child of children) el.append(child);
  return el;
}

/** A name from the metadata: isolated (bidi), invisible and control characters made visible. */
function name(text) {
  const out = h('bdi', { class: 'name' });
  let at = 0;
  for (const m of text.matchAll(HIDDEN)) {
    if (m.index > at) out.append(text.slice(at, m.index));
    const code = m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
    out.append(h('span', { class: 'ctl', title: 'an invisible or control character' }, `U+${code}`));
    at = m.index + m[0].length;
  }
  if (at < text.length) out.append(text.slice(at));
  return out;
}

/** The same for an SVG <text> or a title: plain text with the hidden characters written out. */
function plain(text) {
  return text.replace(HIDDEN, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

function relative(expires, now) {
  const ms = Date.parse(expires) - Date.parse(now);
  const abs = Math.abs(ms);
  const text =
    abs >= 365 * DAY
      ? `${(abs / (365 * DAY)).toFixed(1)} years`
      : abs >= DAY
        ? `${Math.floor(abs / DAY)} d`
        : abs >= 3_600_000
          ? `${Math.floor(abs / 3_600_000)} h`
          : `${Math.max(1, Math.floor(abs / 60_000))} min`;
  return ms <= 0 ? `expired ${text} ago` : `in ${text}`;
}

function expiry(expires, state, now) {
  return h(
    'span',
    {},
    h('span', { class: `state ${state}`, 'data-state': state }, STATE_TEXT[state]),
    ' ',
    h('span', { class: 'mono', title: expires }, expires),
    ' ',
    h('span', { class: 'muted' }, `(${relative(expires, now)})`),
  );
}

const short = (keyid) => `${keyid.slice(0, 12)}…`;

function keyList(keys) {
  return keys.map((k) =>
    h('span', { class: 'chip mono', title: `${k.keyid} (${k.keytype}, ${k.scheme})` }, short(k.keyid)),
  );
}

/** Replaces what the page shows; absent parts (null) are left out. */
function show(...parts) {
  main.replaceChildren(...parts.flat().filter((p) => p !== null && p !== undefined && p !== false));
}

class Unauthorized extends Error {}

/** GET a JSON endpoint with the token of this tab, if any; 401 asks for one. */
async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(`api/${path}${query.size > 0 ? `?${query}` : ''}`, {
    headers: token === null ? {} : { Authorization: `Bearer ${token}` },
    credentials: 'omit',
    cache: 'no-store',
  });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) throw new Unauthorized(body.error?.message ?? 'a token is needed');
  if (!res.ok) throw new Error(`${body.error?.code ?? res.status}: ${body.error?.message ?? res.statusText}`);
  return body;
}

function showLogin(message) {
  show();
  login.hidden = false;
  logout.hidden = sessionStorage.getItem(TOKEN_KEY) === null;
  document.getElementById('login-error').textContent = message;
  document.getElementById('token').focus();
}

login.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = document.getElementById('token').value.trim();
  if (token === '') return;
  sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById('token').value = '';
  route();
});

logout.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  route();
});

function pager(page, pageSize, total, go) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const prev = h('button', { type: 'button', disabled: page <= 1 }, '← previous');
  const next = h('button', { type: 'button', disabled: page >= pages }, 'next →');
  prev.addEventListener('click', () => go(page - 1));
  next.addEventListener('click', () => go(page + 1));
  return h('div', { class: 'pager' }, prev, `page ${page} of ${pages} (${total})`, next);
}

function searchBox(label, value, onSearch) {
  const input = h('input', { type: 'search', placeholder: label, 'aria-label': label, value });
  let timer;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => onSearch(input.value), 250);
  });
  return input;
}

/** Days from now on a log scale: 0 d at the left edge past the expired band, 10 years at the right. */
function timeline(collections, now) {
  const width = 1000;
  const left = 280;
  const band = 60;
  const row = 18;
  const top = 28;
  const span = Math.log1p(3653);
  const x = (expires) => {
    const days = (Date.parse(expires) - Date.parse(now)) / DAY;
    if (days <= 0) return left + band * Math.max(0.1, 1 + days / 30);
    return left + band + (width - left - band - 24) * Math.min(1, Math.log1p(days) / span);
  };
  const height = top + row * Math.max(1, collections.length) + 8;
  const svg = s('svg', {
    class: 'timeline',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'When each role of these collections expires',
  });
  svg.append(
    s('rect', { x: left, y: top - 6, width: band, height: height - top, class: 'expired', opacity: 0.12 }),
  );
  svg.append(s('text', { x: left + band - 4, y: 14, 'text-anchor': 'end', class: 'tick' }, 'expired'));
  svg.append(s('line', { x1: left + band, x2: left + band, y1: top - 6, y2: height, class: 'now' }));
  svg.append(s('text', { x: left + band + 4, y: 14, 'text-anchor': 'start', class: 'tick' }, 'now'));
  const ticks = [
    ['7 d', 7],
    ['30 d', 30],
    ['1 y', 365],
    ['3 y', 1095],
    ['10 y', 3652],
  ];
  for (const [label, days] of ticks) {
    const at = left + band + (width - left - band - 24) * (Math.log1p(days) / span);
    svg.append(s('line', { x1: at, x2: at, y1: top - 6, y2: height, class: 'axis' }));
    svg.append(s('text', { x: at, y: 14, 'text-anchor': 'middle', class: 'tick' }, label));
  }
  collections.forEach((c, i) => {
    const y = top + row * i + row / 2;
    const gun = plain(c.gun);
    svg.append(s('text', { x: 4, y: y + 4 }, gun.length > 44 ? `${gun.slice(0, 43)}…` : gun));
    for (const r of c.roles) {
      const dot = s('circle', { cx: x(r.expires), cy: y, r: 5, class: r.state, 'data-role': r.role });
      dot.append(
        s('title', {}, `${gun} ${plain(r.role)} v${r.version}: ${r.expires} (${relative(r.expires, now)})`),
      );
      svg.append(dot);
    }
  });
  return svg;
}

async function listView(params) {
  const data = await api('collections', { q: params.q, page: params.page });
  const go = (next) => {
    location.hash = `#/?${new URLSearchParams({ ...(params.q ? { q: params.q } : {}), page: String(next) })}`;
  };
  const rows = data.collections.map((c) =>
    h(
      'tr',
      { 'data-gun': c.gun },
      h('td', {}, h('a', { href: `#/c/${encodeURIComponent(c.gun)}` }, name(c.gun))),
      h('td', {}, expiry(c.nearest, c.state, data.now)),
      h(
        'td',
        {},
        c.roles.map((r) =>
          h(
            'span',
            { class: `chip ${r.state}`, title: `${plain(r.role)}: ${r.expires}` },
            name(r.role),
            ` v${r.version}`,
          ),
        ),
        c.roleCount > c.roles.length
          ? h('span', { class: 'muted' }, ` +${c.roleCount - c.roles.length} more`)
          : null,
      ),
    ),
  );
  const c = data.counts;
  show(
    h('h2', {}, 'Collections'),
    h(
      'p',
      { class: 'counts' },
      h('span', {}, h('span', { class: 'state expired' }, 'expired'), ` ${c.expired}`),
      h('span', {}, h('span', { class: 'state week' }, '≤ 7 days'), ` ${c.week}`),
      h('span', {}, h('span', { class: 'state month' }, '≤ 30 days'), ` ${c.month}`),
      h('span', {}, h('span', { class: 'state fine' }, 'fine'), ` ${c.fine}`),
      h('span', { class: 'muted' }, `as of ${data.now}`),
    ),
    h(
      'div',
      { class: 'toolbar' },
      searchBox('Search collections', params.q ?? '', (q) => {
        location.hash = `#/?${new URLSearchParams(q ? { q } : {})}`;
      }),
    ),
    data.total === 0
      ? h('p', { class: 'muted' }, 'No collection to show.')
      : h(
          'table',
          { id: 'collections' },
          h(
            'thead',
            {},
            h('tr', {}, h('th', {}, 'Collection'), h('th', {}, 'Nearest expiry'), h('th', {}, 'Roles')),
          ),
          h('tbody', {}, rows),
        ),
    pager(data.page, data.pageSize, data.total, go),
    h('h2', {}, 'Expiry timeline'),
    h('p', { class: 'muted' }, 'Every role of the collections above (log scale from now).'),
    timeline(data.collections, data.now),
  );
}

function treeNodes(nodes) {
  return h(
    'ul',
    {},
    nodes.map((n) => {
      const detail = [];
      if (n.bins) {
        const b = n.bins;
        detail.push(
          h(
            'span',
            { class: 'muted' },
            ` succinct hash bins: ${b.count} bins (${b.bitLength} bits), ${b.published} published`,
            b.versions ? `, versions ${b.versions[0]}–${b.versions[1]}` : '',
          ),
        );
        if (b.nearest)
          detail.push(
            ' nearest: ',
            name(b.nearest.role),
            ' ',
            expiry(b.nearest.expires, b.nearest.state, nowOf),
          );
      } else if (n.stored) {
        detail.push(` v${n.stored.version} `, expiry(n.stored.expires, n.stored.state, nowOf));
      } else {
        detail.push(h('span', { class: 'muted' }, ' not published'));
      }
      const scope = n.paths ?? n.pathHashPrefixes;
      return h(
        'li',
        { 'data-role': n.name },
        h('strong', {}, name(n.name)),
        ` ${n.threshold} of ${n.keys.length} `,
        keyList(n.keys),
        n.terminating ? h('span', { class: 'chip' }, 'terminating') : null,
        ...detail,
        scope
          ? h(
              'div',
              { class: 'muted' },
              n.paths ? 'paths: ' : 'hash prefixes: ',
              scope.shown.flatMap((p, i) => [i > 0 ? ', ' : '', h('code', {}, name(p))]),
              scope.total > scope.shown.length ? ` … ${scope.total - scope.shown.length} more` : '',
            )
          : null,
        n.cut ? h('div', { class: 'muted' }, `${n.cut} delegation(s) below not shown`) : null,
        n.children.length > 0 ? treeNodes(n.children) : null,
      );
    }),
  );
}

/** The server's clock of the collection being drawn (relative times are the server's). */
let nowOf = new Date().toISOString();

function pendingBlock(p) {
  const roles = p.roles.map((r) => `${r.role} v${r.version}`).join(', ');
  const parts = [
    h(
      'div',
      {},
      h('strong', {}, 'Pending '),
      name(roles),
      ' ',
      h('span', { class: 'chip' }, p.state),
      ' ',
      h('code', { title: p.id }, short(p.id)),
    ),
    h('div', { class: 'muted' }, `proposed ${p.created}, waits until ${p.expires}`),
  ];
  if (p.error) parts.push(h('div', { class: 'error' }, `${p.error.code}: ${p.error.message}`));
  for (const role of p.status?.roles ?? []) {
    for (const t of role.thresholds) {
      const missing = t.needed;
      parts.push(
        h(
          'div',
          { class: 'threshold', 'data-role': role.role },
          name(role.role),
          ` (by ${t.by}): ${t.signed.length} of ${t.threshold} needed signed `,
          missing === 0
            ? h('span', { class: 'signed' }, 'threshold met')
            : h('span', { class: 'missing' }, `${missing} signature${missing === 1 ? '' : 's'} missing`),
          h(
            'div',
            {},
            'signed: ',
            t.signed.length === 0
              ? h('span', { class: 'muted' }, 'nobody')
              : t.signed.map((k) => h('span', { class: 'chip mono signed', title: k }, short(k))),
            ' · not yet: ',
            t.missing.length === 0
              ? h('span', { class: 'muted' }, 'nobody')
              : t.missing.map((k) => h('span', { class: 'chip mono', title: k }, short(k))),
          ),
        ),
      );
    }
  }
  for (const change of p.changes ?? []) {
    if (change.targets) {
      const { added, removed, changed } = change.targets;
      parts.push(
        h(
          'div',
          { class: 'muted' },
          `${change.role}: ${added.length} added, ${removed.length} removed, ${changed.length} changed`,
        ),
      );
    }
  }
  return h('div', { class: 'pending' }, parts);
}

async function targetsSection(gun, state) {
  const section = h('section', { id: 'targets' });
  const draw = async () => {
    const data = await api('targets', { gun, q: state.q, page: state.page });
    const rows = data.targets.map((t) =>
      h(
        'tr',
        {},
        h('td', { class: 'target' }, name(t.name)),
        h('td', {}, name(t.role)),
        h('td', {}, String(t.length)),
        h(
          'td',
          { class: 'mono' },
          t.hashes.sha256
            ? `sha256:${t.hashes.sha256}`
            : Object.entries(t.hashes)
                .map(([a, d]) => `${a}:${d}`)
                .join(' '),
        ),
      ),
    );
    section.replaceChildren(
      h('h2', {}, `Targets (${data.total})`),
      h(
        'div',
        { class: 'toolbar' },
        searchBox('Search targets', state.q, (q) => {
          state.q = q;
          state.page = 1;
          draw().catch(failed);
        }),
      ),
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Target'),
            h('th', {}, 'Role'),
            h('th', {}, 'Length'),
            h('th', {}, 'Digest'),
          ),
        ),
        h('tbody', {}, rows),
      ),
      pager(data.page, data.pageSize, data.total, (next) => {
        state.page = next;
        draw().catch(failed);
      }),
    );
    const input = section.querySelector('input');
    if (state.q !== '' && input) {
      input.focus();
      input.setSelectionRange(state.q.length, state.q.length);
    }
  };
  await draw();
  return section;
}

async function collectionView(gun) {
  const data = await api('collection', { gun });
  nowOf = data.now;
  const roleRows = data.roles.map((r) =>
    h(
      'tr',
      { 'data-role': r.role },
      h('td', {}, name(r.role)),
      h('td', {}, r.version === null ? '—' : `v${r.version}`),
      h(
        'td',
        {},
        r.version === null
          ? h('span', { class: 'muted' }, 'not published')
          : expiry(r.expires, r.state, data.now),
        r.serverSigned
          ? h(
              'span',
              { class: 'chip', title: 'the server re-signs it before it expires' },
              'signed by the server',
            )
          : null,
      ),
      h('td', {}, r.threshold === null ? '?' : `${r.threshold} of ${r.keys.length}`),
      h('td', {}, keyList(r.keys)),
      h('td', {}, r.delegator === null ? '?' : name(r.delegator)),
    ),
  );
  show(
    h('p', {}, h('a', { href: '#/' }, '← all collections')),
    h('h2', { id: 'gun' }, name(data.gun)),
    h(
      'p',
      { class: 'muted' },
      `as of ${data.now} · consistent snapshots ${data.consistentSnapshot ? 'on' : 'off'} · ${data.targetCount} targets`,
    ),
    h(
      'table',
      { id: 'roles' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Role'),
          h('th', {}, 'Version'),
          h('th', {}, 'Expires'),
          h('th', {}, 'Threshold'),
          h('th', {}, 'Keys'),
          h('th', {}, 'Delegated by'),
        ),
      ),
      h('tbody', {}, roleRows),
    ),
    data.binRoles > 0
      ? h('p', { class: 'muted' }, `${data.binRoles} hash-bin roles are summed up in the delegation tree.`)
      : null,
    h('h2', {}, 'Delegations'),
    data.delegations.length === 0
      ? h('p', { class: 'muted' }, 'targets delegates to no role.')
      : h(
          'div',
          { class: 'tree', id: 'delegations' },
          h('strong', {}, 'targets'),
          treeNodes(data.delegations),
        ),
    data.pending === null
      ? [
          h('h2', {}, 'Pending updates'),
          h('p', { class: 'muted', id: 'pending-hidden' }, 'Shown to tokens that may push this collection.'),
        ]
      : [
          h('h2', {}, `Pending updates (${data.pending.length})`),
          data.pending.length === 0
            ? h('p', { class: 'muted' }, 'None.')
            : h('div', { id: 'pending' }, data.pending.map(pendingBlock)),
        ],
    await targetsSection(data.gun, { q: '', page: 1 }),
  );
}

function failed(err) {
  if (err instanceof Unauthorized) {
    showLogin(sessionStorage.getItem(TOKEN_KEY) === null ? '' : `Refused: ${err.message}`);
    return;
  }
  show(h('p', { class: 'error', role: 'alert' }, String(err.message ?? err)));
}

function route() {
  login.hidden = true;
  logout.hidden = sessionStorage.getItem(TOKEN_KEY) === null;
  const hash = location.hash.replace(/^#/, '');
  delete document.body.dataset.ready;
  const view = async () => {
    if (hash.startsWith('/c/')) return collectionView(decodeURIComponent(hash.slice(3)));
    const q = new URLSearchParams(hash.split('?')[1] ?? '');
    return listView({ q: q.get('q') ?? '', page: q.get('page') ?? undefined });
  };
  view()
    .catch(failed)
    .finally(() => {
      document.body.dataset.ready = 'true';
    });
}

window.addEventListener('hashchange', route);
route();
