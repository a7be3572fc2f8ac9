// teleinfo dashboard: one ES module, no framework. Reads the server's JSON API (docs/api.md)
// and the live Server-Sent Events stream; charts are uPlot (loaded before this module).

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- text

const TEXT = {
  fr: {
    views: 'Vues', 'nav.live': 'Direct', 'nav.history': 'Historique', 'nav.energy': 'Énergie', 'nav.devices': 'Appareils',
    meter: 'Compteur', 'live.power': 'Puissance apparente', 'live.injected': 'Injectée',
    'live.tariff': 'Période tarifaire', 'live.today': 'Aujourd’hui', 'live.tomorrow': 'Demain',
    'live.phases': 'Par phase', 'live.power_short': 'Puissance (VA)', 'live.current': 'Courant (A)', 'live.voltage': 'Tension (V)',
    'live.status': 'État du compteur', 'live.relays': 'Relais', 'live.messages': 'Messages du compteur', 'live.indexes': 'Index',
    'live.recent': 'Dernières minutes (VA)', range: 'Période', unit: 'Unité', earlier: 'Plus tôt', later: 'Plus tard',
    'p.day': 'Jour', 'p.week': 'Semaine', 'p.month': 'Mois', 'p.year': 'Année', from: 'Du', to: 'au', apply: 'Afficher',
    'h.hint': 'Sélectionnez une zone d’un graphique pour zoomer ; double-clic pour revenir en arrière.',
    'h.power': 'Puissance apparente (VA)', 'h.voltage': 'Tension (V)', 'h.current': 'Courant (A)',
    'e.day': 'Jours', 'e.week': 'Semaines', 'e.month': 'Mois', 'e.year': 'Années',
    'e.title': 'Énergie par période et par index', footer: 'données stockées localement, aucun service externe',
    subscribed: 'de {p} VA souscrits', active: 'Puissance active (courbe de charge) : {v} W',
    ago: 'trame reçue il y a {s}', noframe: 'Aucune trame de ce compteur, ni archivée ni reçue.',
    nometer: 'Aucun compteur pour l’instant : branchez un module ou lancez « teleinfo demo ».',
    index: 'index {n}', tempo: { blue: 'Bleu', white: 'Blanc', red: 'Rouge' }, unknown: 'inconnu',
    ejpNotice: 'Préavis de pointe mobile (PM{n})', ejpNow: 'Pointe mobile en cours (PM{n})', pejp: 'Préavis EJP : pointe dans {m} min',
    breakerClosed: 'Organe de coupure fermé', breakerOpen: 'Coupure ouverte : {r}',
    cut: { Overpower: 'dépassement de puissance', Overvoltage: 'surtension', LoadShedding: 'délestage', RemoteOrder: 'ordre CPL ou Euridis',
      OverheatingHighCurrent: 'surchauffe (courant élevé)', OverheatingLowCurrent: 'surchauffe', Undefined: 'cause inconnue' },
    coverOpen: 'Cache-bornes ouvert', coverClosed: 'Cache-bornes fermé', overvoltage: 'Surtension sur une phase', noOvervoltage: 'Pas de surtension',
    overload: 'Dépassement de la puissance souscrite', noOverload: 'Puissance souscrite respectée', clockDegraded: 'Horloge du compteur dégradée',
    contactOpen: 'Contact sec ouvert', contactClosed: 'Contact sec fermé', producer: 'Producteur', injecting: 'injecte en ce moment',
    adps: 'Dépassement d’intensité : {a} A', noStge: 'Mode historique : registre d’état non transmis',
    total: 'Total', lastYear: 'Il y a un an', injection: 'Injection', subscription: 'Abonnement', period: 'Période',
    noEnergy: 'Pas d’index d’énergie pour ce compteur.', kwh: 'kWh',
    lastSeen: 'Vu', mode: 'Mode', fpm: 'Trames/min', rejected: 'Groupes rejetés', rssi: 'WiFi', buffer: 'Tampon', drift: 'Dérive horloge',
    firmware: 'Firmware', meters: 'Compteurs', frames: 'Trames stockées', none: 'aucun', secondsAgo: 'il y a {s}',
    diag: {
      ok: 'Tout va bien : trames régulières et propres.',
      silent: 'Plus de nouvelles depuis {s} : vérifiez l’alimentation et le WiFi du module.',
      noSignal: 'Pas de signal TIC : vérifiez le câblage sur I1/I2 et que la TIC du compteur est active.',
      wrongMode: 'Signal présent mais illisible : mauvais mode (historique 1200 Bd / standard 9600 Bd) ? Laissez la détection automatique.',
      noisy: 'Ligne bruitée ({p} % de groupes rejetés) : vérifiez la résistance de l’optocoupleur et la longueur du câble.',
      weakWifi: 'WiFi faible ({r} dBm) : rapprochez le module ou ajoutez un répéteur.',
      backlog: 'Le module accumule des trames ({p} % du tampon) : le serveur est-il joignable ?',
      drift: 'L’horloge du compteur s’écarte de {s} s de celle du module.',
    },
    periods: { 'TH..': 'Toutes heures', 'HC..': 'Heures creuses', 'HP..': 'Heures pleines', 'HN..': 'Heures normales', 'PM..': 'Pointe mobile',
      HCJB: 'HC jour bleu', HPJB: 'HP jour bleu', HCJW: 'HC jour blanc', HPJW: 'HP jour blanc', HCJR: 'HC jour rouge', HPJR: 'HP jour rouge' },
    idx: { BASE: 'Base', HC: 'Heures creuses', HP: 'Heures pleines', HN: 'Heures normales', PM: 'Pointe mobile',
      HCB: 'HC Bleu', HPB: 'HP Bleu', HCW: 'HC Blanc', HPW: 'HP Blanc', HCR: 'HC Rouge', HPR: 'HP Rouge' },
    error: 'Erreur : {e}', offline: 'Connexion au direct perdue, reconnexion…',
    modes: { historic: 'historique', standard: 'standard', unknown: 'inconnu' }, time: 'Heure',
  },
  en: {
    views: 'Views', 'nav.live': 'Live', 'nav.history': 'History', 'nav.energy': 'Energy', 'nav.devices': 'Devices',
    meter: 'Meter', 'live.power': 'Apparent power', 'live.injected': 'Injected',
    'live.tariff': 'Tariff period', 'live.today': 'Today', 'live.tomorrow': 'Tomorrow',
    'live.phases': 'Per phase', 'live.power_short': 'Power (VA)', 'live.current': 'Current (A)', 'live.voltage': 'Voltage (V)',
    'live.status': 'Meter status', 'live.relays': 'Relays', 'live.messages': 'Meter messages', 'live.indexes': 'Indexes',
    'live.recent': 'Last minutes (VA)', range: 'Range', unit: 'Unit', earlier: 'Earlier', later: 'Later',
    'p.day': 'Day', 'p.week': 'Week', 'p.month': 'Month', 'p.year': 'Year', from: 'From', to: 'to', apply: 'Show',
    'h.hint': 'Select an area of a chart to zoom in; double-click to go back.',
    'h.power': 'Apparent power (VA)', 'h.voltage': 'Voltage (V)', 'h.current': 'Current (A)',
    'e.day': 'Days', 'e.week': 'Weeks', 'e.month': 'Months', 'e.year': 'Years',
    'e.title': 'Energy per period and tariff index', footer: 'data stored locally, no external service',
    subscribed: 'of {p} VA subscribed', active: 'Active power (load curve): {v} W',
    ago: 'frame received {s} ago', noframe: 'No frame from this meter, neither archived nor received.',
    nometer: 'No meter yet: connect a device or run “teleinfo demo”.',
    index: 'index {n}', tempo: { blue: 'Blue', white: 'White', red: 'Red' }, unknown: 'unknown',
    ejpNotice: 'Mobile peak notice (PM{n})', ejpNow: 'Mobile peak in progress (PM{n})', pejp: 'EJP notice: peak in {m} min',
    breakerClosed: 'Breaker closed', breakerOpen: 'Breaker open: {r}',
    cut: { Overpower: 'overpower', Overvoltage: 'overvoltage', LoadShedding: 'load shedding', RemoteOrder: 'PLC or Euridis order',
      OverheatingHighCurrent: 'overheating (high current)', OverheatingLowCurrent: 'overheating', Undefined: 'unknown cause' },
    coverOpen: 'Terminal cover open', coverClosed: 'Terminal cover closed', overvoltage: 'Overvoltage on a phase', noOvervoltage: 'No overvoltage',
    overload: 'Subscribed power exceeded', noOverload: 'Within subscribed power', clockDegraded: 'Meter clock degraded',
    contactOpen: 'Dry contact open', contactClosed: 'Dry contact closed', producer: 'Producer', injecting: 'injecting now',
    adps: 'Current over subscription: {a} A', noStge: 'Historic mode: no status register sent',
    total: 'Total', lastYear: 'A year earlier', injection: 'Injection', subscription: 'Subscription', period: 'Period',
    noEnergy: 'This meter has no energy index.', kwh: 'kWh',
    lastSeen: 'Seen', mode: 'Mode', fpm: 'Frames/min', rejected: 'Rejected groups', rssi: 'WiFi', buffer: 'Buffer', drift: 'Clock drift',
    firmware: 'Firmware', meters: 'Meters', frames: 'Frames stored', none: 'none', secondsAgo: '{s} ago',
    diag: {
      ok: 'All good: regular, clean frames.',
      silent: 'Nothing heard for {s}: check the device’s power supply and WiFi.',
      noSignal: 'No TIC signal: check the wiring on I1/I2 and that the meter’s TIC is on.',
      wrongMode: 'Signal but unreadable: wrong mode (historic 1200 Bd / standard 9600 Bd)? Leave detection on automatic.',
      noisy: 'Noisy line ({p} % of groups rejected): check the optocoupler resistor and the cable length.',
      weakWifi: 'Weak WiFi ({r} dBm): move the device closer or add a repeater.',
      backlog: 'The device is queueing frames ({p} % of its buffer): can it reach the server?',
      drift: 'The meter clock is {s} s away from the device clock.',
    },
    periods: { 'TH..': 'All hours', 'HC..': 'Off-peak', 'HP..': 'Peak', 'HN..': 'Normal hours', 'PM..': 'Mobile peak',
      HCJB: 'Off-peak blue day', HPJB: 'Peak blue day', HCJW: 'Off-peak white day', HPJW: 'Peak white day', HCJR: 'Off-peak red day', HPJR: 'Peak red day' },
    idx: { BASE: 'Base', HC: 'Off-peak', HP: 'Peak', HN: 'Normal hours', PM: 'Mobile peak',
      HCB: 'Off-peak blue', HPB: 'Peak blue', HCW: 'Off-peak white', HPW: 'Peak white', HCR: 'Off-peak red', HPR: 'Peak red' },
    error: 'Error: {e}', offline: 'Live connection lost, reconnecting…',
    modes: { historic: 'historic', standard: 'standard', unknown: 'unknown' }, time: 'Time',
  },
};

let lang = localStorage.getItem('teleinfo.lang') || ((navigator.language || 'fr').startsWith('en') ? 'en' : 'fr');
const LOCALE = () => (lang === 'fr' ? 'fr-FR' : 'en-GB');
function t(key, vars) {
  let s = key.split('.').reduce((o, k) => (o == null ? o : o[k]), TEXT[lang]);
  if (s == null) s = TEXT[lang][key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (_, k) => vars[k]);
  return s;
}

// French typography comes from Intl: narrow no-break space between thousands, decimal comma.
const nf = {};
function num(v, digits = 0) {
  if (v == null || !Number.isFinite(v)) return '—';
  const k = LOCALE() + digits;
  nf[k] ??= new Intl.NumberFormat(LOCALE(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return nf[k].format(v);
}
const money = (v, cur = 'EUR') => (v == null ? '—' : new Intl.NumberFormat(LOCALE(), { style: 'currency', currency: cur || 'EUR' }).format(v));
function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} j`.replace(' j', lang === 'fr' ? ' j' : ' d');
}

function applyText() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  const b = $('lang');
  b.textContent = lang === 'fr' ? 'English' : 'Français';
  b.lang = lang === 'fr' ? 'en' : 'fr';
}

// ---------------------------------------------------------------- API

async function api(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!r.ok) {
    let msg = `${r.status}`;
    try { msg = (await r.json()).error ?? msg; } catch { /* not JSON */ }
    const e = new Error(msg);
    e.status = r.status;
    throw e;
  }
  return r.json();
}
const enc = encodeURIComponent;
function status(msg) { $('status').textContent = msg || ''; }

// ---------------------------------------------------------------- state

const state = {
  meters: [],
  meter: null,
  latest: new Map(), // meter → last LiveFrame
  series: new Map(), // meter → Set of metric names
  view: 'live',
  hist: { preset: 'day', from: 0, to: 0, back: [] },
  energy: { period: 'day', unit: 'kwh' },
};

// Tariff index names: historic labels name themselves; standard EASFnn depend on the contract
// (NGTF), with the order Enedis calendars use (tic-protocol.md §5.3, meter-sim's tariffs).
const IDX_COLOURS = { BASE: '#0b5cad', HC: '#2e9d8f', HP: '#e07b00', HN: '#2e9d8f', PM: '#b3261e',
  HCB: '#64a8ee', HPB: '#1256a0', HCW: '#c9ced6', HPW: '#7d8590', HCR: '#f08080', HPR: '#b3261e' };
const HIST_IDX = { BASE: 'BASE', HCHC: 'HC', HCHP: 'HP', EJPHN: 'HN', EJPHPM: 'PM', BBRHCJB: 'HCB', BBRHPJB: 'HPB',
  BBRHCJW: 'HCW', BBRHPJW: 'HPW', BBRHCJR: 'HCR', BBRHPJR: 'HPR' };
function contractOf(meter) {
  const f = state.latest.get(meter)?.frame?.fields ?? {};
  const ngtf = (f.NGTF?.value ?? f.OPTARIF?.value ?? '').toUpperCase();
  if (ngtf.includes('TEMPO') || ngtf.startsWith('BBR')) return ['HCB', 'HPB', 'HCW', 'HPW', 'HCR', 'HPR'];
  if (ngtf.includes('EJP')) return ['HN', 'PM'];
  if (ngtf.includes('CREUSE') || ngtf.startsWith('HC')) return ['HC', 'HP'];
  if (ngtf.includes('BASE')) return ['BASE'];
  return [];
}
function indexKey(label, meter) {
  if (HIST_IDX[label]) return HIST_IDX[label];
  const m = /^EASF(\d\d)$/.exec(label);
  if (m) return contractOf(meter)[Number(m[1]) - 1] ?? null;
  return null;
}
function indexName(label, meter) {
  const k = indexKey(label, meter);
  return k ? t('idx.' + k) : label.replace(/^EASF0?/, t('index', { n: '' }).trim() + ' ');
}
const PALETTE = ['#0b5cad', '#e07b00', '#2e9d8f', '#b3261e', '#7b3fb3', '#5d6b00', '#c2185b', '#455a64', '#8d6e63', '#00838f'];
function indexColour(label, meter, i) { return IDX_COLOURS[indexKey(label, meter)] ?? PALETTE[i % PALETTE.length]; }

// ---------------------------------------------------------------- charts

const charts = {};
const css = (v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim();
function chartSize(el) { return { width: Math.max(280, el.clientWidth), height: window.innerWidth < 600 ? 220 : 260 }; }
const axis = () => ({ stroke: css('--muted'), grid: { stroke: css('--line'), width: 1 }, ticks: { stroke: css('--line') } });
// Time ticks in the page's language, 24-hour clock (uPlot's defaults are US English).
const dtf = {};
function fmtTime(ms, opts) {
  const k = LOCALE() + JSON.stringify(opts);
  dtf[k] ??= new Intl.DateTimeFormat(LOCALE(), opts);
  return dtf[k].format(ms);
}
function timeTicks(u, splits, axisIdx, space, incr) {
  let prevDay = null;
  return splits.map((s) => {
    const ms = s * 1000;
    if (incr >= 365 * 86400 - 86400) return fmtTime(ms, { year: 'numeric' });
    if (incr >= 28 * 86400) return fmtTime(ms, { month: 'short', year: 'numeric' });
    if (incr >= 86400) return fmtTime(ms, { day: 'numeric', month: 'short' });
    const day = fmtTime(ms, { day: 'numeric', month: 'short' });
    const hm = fmtTime(ms, { hour: '2-digit', minute: '2-digit' });
    // The date under the first tick of each day.
    const out = day !== prevDay ? `${hm}\n${day}` : hm;
    prevDay = day;
    return out;
  });
}
const timeAxis = () => ({ ...axis(), values: timeTicks });
const timeLegend = (u, v) => (v == null ? '—' : fmtTime(v * 1000, { dateStyle: 'medium', timeStyle: 'short' }));

// (Re)creates a chart in `id` and records on the element how many points it drew, which the
// browser tests read.
function draw(id, opts, data) {
  const el = $(id);
  charts[id]?.destroy();
  el.textContent = '';
  opts = { ...chartSize(el), ...opts, axes: opts.axes ?? [timeAxis(), axis()] };
  if (opts.series[0] && !opts.series[0].value) opts.series[0] = { ...opts.series[0], label: t('time'), value: timeLegend };
  opts.fmtDate ??= (tpl) => uPlot.fmtDate(tpl, lang === 'fr' ? FR_NAMES : undefined);
  charts[id] = new uPlot(opts, data, el);
  let n = 0;
  for (let i = 1; i < data.length; i++) for (const v of data[i]) if (v != null) n++;
  el.dataset.points = String(n);
  return charts[id];
}
const FR_NAMES = {
  MMMM: ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août', 'septembre', 'octobre', 'novembre', 'décembre'],
  MMM: ['janv.', 'févr.', 'mars', 'avr.', 'mai', 'juin', 'juil.', 'août', 'sept.', 'oct.', 'nov.', 'déc.'],
  WWWW: ['dimanche', 'lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi'],
  WWW: ['dim.', 'lun.', 'mar.', 'mer.', 'jeu.', 'ven.', 'sam.'],
};
window.addEventListener('resize', () => {
  for (const [id, c] of Object.entries(charts)) if ($(id).offsetParent) c.setSize(chartSize($(id)));
});
const yFmt = (digits = 0) => (u, vals) => vals.map((v) => num(v, digits));

// ---------------------------------------------------------------- meters

async function loadMeters() {
  const { meters } = await api('api/v1/meters');
  state.meters = meters;
  const sel = $('meter');
  const want = state.meter ?? localStorage.getItem('teleinfo.meter');
  sel.textContent = '';
  for (const m of meters) {
    const o = document.createElement('option');
    o.value = m.meter;
    o.textContent = m.meter + (m.mode ? ` (${t('modes.' + m.mode)})` : '');
    sel.append(o);
  }
  sel.closest('.tools').querySelector('label').hidden = sel.hidden = meters.length < 2;
  if (!meters.length) { status(t('nometer')); return; }
  state.meter = meters.some((m) => m.meter === want) ? want : meters[0].meter;
  sel.value = state.meter;
}

async function seriesOf(meter) {
  if (!state.series.has(meter)) {
    const { series } = await api(`api/v1/series?meter=${enc(meter)}`);
    state.series.set(meter, new Set(series.map((s) => s.metric)));
  }
  return state.series.get(meter);
}

// ---------------------------------------------------------------- live

let source = null;
function connectLive() {
  source?.close();
  if (!state.meter) return;
  const meter = state.meter;
  source = new EventSource(`api/v1/meters/${enc(meter)}/live`);
  source.addEventListener('frame', (ev) => {
    const f = JSON.parse(ev.data);
    state.latest.set(f.meter, f);
    if (f.meter !== state.meter) return;
    if ($('status').textContent === t('offline')) status('');
    renderLive(f);
    pushLivePoint(f);
  });
  source.onerror = () => { if (source.readyState !== EventSource.OPEN) status(t('offline')); };
}

const field = (f, l) => f?.frame?.fields?.[l];
const n = (f, l) => field(f, l)?.number ?? null;

function renderLive(f) {
  const d = f.frame.decoded ?? {};
  const s = d.stge;
  const papp = n(f, 'SINSTS') ?? n(f, 'PAPP');
  $('l-papp').textContent = num(papp);
  const three = n(f, 'SINSTS3') != null || n(f, 'IINST3') != null || n(f, 'URMS3') != null;
  const prefVa = n(f, 'PREF') != null ? n(f, 'PREF') * 1000 : n(f, 'ISOUSC') != null ? n(f, 'ISOUSC') * 200 * (three ? 3 : 1) : null;
  $('l-pref').textContent = prefVa ? t('subscribed', { p: num(prefVa) }) : '';
  const ratio = prefVa && papp != null ? papp / prefVa : 0;
  const bar = $('l-prefbar');
  bar.style.width = `${Math.min(100, ratio * 100)}%`;
  bar.className = ratio > 1 ? 'over' : ratio > 0.8 ? 'hi' : '';
  const sinsti = n(f, 'SINSTI');
  $('l-inj').hidden = sinsti == null;
  $('l-sinsti').textContent = num(sinsti);
  const ccasn = n(f, 'CCASN');
  $('l-active').hidden = ccasn == null;
  if (ccasn != null) $('l-active').textContent = t('active', { v: num(ccasn) });
  const when = $('l-when');
  when.dataset.ts = String(f.ts_ms);
  when.dataset.receive = String(f.receive_ms);
  when.textContent = t('ago', { s: duration(Date.now() - f.receive_ms) });

  // Tariff period: LTARF (standard) or PTEC (historic).
  const ptec = field(f, 'PTEC')?.value;
  // PTEC values contain dots (`HC..`): look them up directly, not through t()'s dotted keys.
  $('l-period').textContent = (ptec ? TEXT[lang].periods[ptec] ?? ptec : d.tariff_period?.trim()) || '—';
  const idxLabel = d.tariff_index_label ?? (d.tariff_index ? `EASF${String(d.tariff_index).padStart(2, '0')}` : null);
  $('l-index').textContent = d.tariff_index ? `${t('index', { n: d.tariff_index })} · ${indexName(idxLabel, f.meter)}` : '';
  const hasTempo = 'tempo_today' in d || 'tempo_tomorrow' in d;
  $('l-tempo').hidden = !hasTempo;
  for (const [id, c] of [['l-today', d.tempo_today], ['l-tomorrow', d.tempo_tomorrow]]) {
    $(id).textContent = c ? t('tempo.' + c) : t('unknown');
    $(id).className = 'chip ' + (c ?? '');
  }
  const ejp = $('l-ejp');
  const notice = s?.mobile_peak_in_progress ? t('ejpNow', { n: s.mobile_peak_in_progress })
    : s?.mobile_peak_notice ? t('ejpNotice', { n: s.mobile_peak_notice })
    : field(f, 'PEJP') ? t('pejp', { m: n(f, 'PEJP') ?? 30 }) : '';
  ejp.hidden = !notice;
  ejp.textContent = notice;

  // Phases.
  $('view-live').querySelector('.phases').classList.toggle('one', !three);
  for (const p of [1, 2, 3]) {
    $(`l-s${p}`).textContent = num(n(f, `SINSTS${p}`) ?? (p === 1 && !three ? papp : null));
    $(`l-i${p}`).textContent = num(n(f, `IRMS${p}`) ?? n(f, `IINST${p}`) ?? (p === 1 ? n(f, 'IINST') : null));
    $(`l-u${p}`).textContent = num(n(f, `URMS${p}`));
  }

  // Status flags.
  const flags = [];
  const add = (cls, text) => flags.push(`<li class="${cls}">${text}</li>`);
  if (s) {
    if (s.cut_off === 'Closed') add('', t('breakerClosed'));
    else add('bad', t('breakerOpen', { r: t('cut.' + s.cut_off) }));
    add(s.cover_open ? 'warn' : '', t(s.cover_open ? 'coverOpen' : 'coverClosed'));
    add(s.overvoltage ? 'bad' : '', t(s.overvoltage ? 'overvoltage' : 'noOvervoltage'));
    add(s.reference_power_exceeded ? 'bad' : '', t(s.reference_power_exceeded ? 'overload' : 'noOverload'));
    add('', t(s.dry_contact_open ? 'contactOpen' : 'contactClosed'));
    if (s.clock_degraded) add('warn', t('clockDegraded'));
    if (s.producer) add('', t('producer') + (s.injecting ? ` — ${t('injecting')}` : ''));
  } else {
    add('', t('noStge'));
    const adps = n(f, 'ADPS') ?? n(f, 'ADIR1') ?? n(f, 'ADIR2') ?? n(f, 'ADIR3');
    add(adps != null ? 'bad' : '', adps != null ? t('adps', { a: adps }) : t('noOverload'));
  }
  $('l-flags').innerHTML = flags.join('');
  const relays = d.relays_closed;
  $('l-relays').innerHTML = relays ? relays.map((on, i) => `<span class="${on ? 'on' : ''}" title="${i + 1}">${i + 1}</span>`).join('') : '—';

  const msgs = d.messages ? Object.values(d.messages).map((m) => m.replace(/\s{2,}/g, ' ')) : [];
  $('l-msg').textContent = msgs.join('\n') || '—';
  const idx = [];
  for (const [label, v] of Object.entries(f.frame.fields)) {
    // Indexes the contract does not use stay at zero: not worth a line.
    if (/^(EAST|EASF\d\d|EAIT|BASE|HCHC|HCHP|EJPHN|EJPHPM|BBRH[CP]J[BWR])$/.test(label) && v.number) {
      const name = label === 'EAST' ? t('total') : label === 'EAIT' ? t('injection') : indexName(label, f.meter);
      idx.push(`<dt title="${label}">${name}</dt><dd>${num(v.number / 1000, 1)} kWh</dd>`);
    }
  }
  $('l-idx').innerHTML = idx.join('');
}

// Live chart: the last 15 minutes from the store, then one point per frame.
const LIVE_SPAN_MS = 15 * 60 * 1000;
let liveData = [[], []];
async function loadLiveChart() {
  const meter = state.meter;
  const to = Date.now();
  let pts = [];
  if ((await seriesOf(meter)).has('power.apparent')) {
    const r = await api(`api/v1/query?metric=power.apparent&meter=${enc(meter)}&from=${to - LIVE_SPAN_MS}&to=${to}&points=450&agg=avg`);
    pts = r.values.avg ?? [];
  }
  if (meter !== state.meter) return;
  liveData = [pts.map((p) => p[0] / 1000), pts.map((p) => p[1])];
  drawLiveChart();
}
function drawLiveChart() {
  draw('c-live', {
    cursor: { drag: { x: false, y: false } }, legend: { show: false },
    scales: { y: { range: (u, min, max) => [0, Math.max(1000, max * 1.15)] } },
    series: [{}, { label: 'VA', stroke: css('--accent'), width: 2, fill: css('--accent') + '22' }],
    axes: [timeAxis(), { ...axis(), values: yFmt(), size: 60 }],
  }, liveData);
}
function pushLivePoint(f) {
  const v = n(f, 'SINSTS') ?? n(f, 'PAPP');
  if (v == null) return;
  const x = f.ts_ms / 1000;
  const [xs, ys] = liveData;
  if (xs.length && x <= xs[xs.length - 1]) return;
  xs.push(x); ys.push(v);
  while (xs.length && xs[0] < x - LIVE_SPAN_MS / 1000) { xs.shift(); ys.shift(); }
  if (state.view === 'live' && charts['c-live']) {
    charts['c-live'].setData(liveData);
    $('c-live').dataset.points = String(xs.length);
  }
}

async function enterLive() {
  const f = state.latest.get(state.meter);
  if (!f) {
    try {
      const l = await api(`api/v1/meters/${enc(state.meter)}/latest`);
      state.latest.set(l.meter, l);
      renderLive(l);
    } catch (e) {
      if (e.status === 404) status(t('noframe')); else throw e;
    }
  } else renderLive(f);
  await loadLiveChart();
}
// "il y a 3 s" keeps counting between frames.
setInterval(() => {
  const f = state.latest.get(state.meter);
  if (f && state.view === 'live') $('l-when').textContent = t('ago', { s: duration(Date.now() - f.receive_ms) });
}, 1000);

// ---------------------------------------------------------------- history

const DAY = 86400000;
const PRESETS = { day: DAY, week: 7 * DAY, month: 30 * DAY, year: 365 * DAY };
function setPreset(p) {
  state.hist.preset = p;
  state.hist.to = Date.now();
  state.hist.from = state.hist.to - PRESETS[p];
  state.hist.back = [];
}
const toInput = (ms) => { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000); return d.toISOString().slice(0, 16); };

const HIST_CHARTS = [
  { id: 'c-power', metrics: ['power.apparent', 'power.apparent.l1', 'power.apparent.l2', 'power.apparent.l3', 'power.injected'],
    names: ['Total', 'L1', 'L2', 'L3', 'inj'], digits: 0 },
  { id: 'c-voltage', metrics: ['voltage.l1', 'voltage.l2', 'voltage.l3'], names: ['L1', 'L2', 'L3'], digits: 0, card: 'h-volt-card' },
  { id: 'c-current', metrics: ['current.l1', 'current.l2', 'current.l3'], names: ['L1', 'L2', 'L3'], digits: 0 },
];
const LINE_COLOURS = ['#0b5cad', '#e07b00', '#2e9d8f', '#b3261e', '#1a7f37'];

async function loadHistory() {
  const meter = state.meter;
  const { from, to } = state.hist;
  $('h-from').value = toInput(from);
  $('h-to').value = toInput(to);
  for (const b of document.querySelectorAll('[data-preset]')) b.setAttribute('aria-pressed', String(b.dataset.preset === state.hist.preset));
  const have = await seriesOf(meter);
  // One bucket per ~2 CSS pixels: as much detail as the screen shows, never more.
  const points = Math.min(1500, Math.max(200, Math.round($('c-power').clientWidth / 2)));
  await Promise.all(HIST_CHARTS.map(async (c) => {
    const metrics = c.metrics.filter((m) => have.has(m));
    if (c.card) $(c.card).hidden = !metrics.length;
    if (!metrics.length) return;
    const res = await Promise.all(metrics.map((m, i) =>
      api(`api/v1/query?metric=${m}&meter=${enc(meter)}&from=${Math.round(from)}&to=${Math.round(to)}&points=${points}&agg=${i === 0 ? 'avg,min,max' : 'avg'}`)));
    if (meter !== state.meter || from !== state.hist.from) return;
    // Align every series on the union of bucket starts.
    const ts = [...new Set(res.flatMap((r) => r.values.avg.map((p) => p[0])))].sort((a, b) => a - b);
    const pos = new Map(ts.map((x, i) => [x, i]));
    const col = (pts) => { const a = new Array(ts.length).fill(null); for (const [x, v] of pts ?? []) a[pos.get(x)] = v; return a; };
    const data = [ts.map((x) => x / 1000)];
    const series = [{}];
    const bands = [];
    // Min/max band of the first series, when buckets hold more than one reading.
    const banded = res[0].bucket_ms > 15000 && res[0].values.min?.length;
    if (banded) {
      data.push(col(res[0].values.max), col(res[0].values.min));
      series.push({ label: 'max', stroke: 'transparent', points: { show: false } }, { label: 'min', stroke: 'transparent', points: { show: false } });
      bands.push({ series: [1, 2], fill: LINE_COLOURS[0] + '30' });
    }
    metrics.forEach((m, i) => {
      data.push(col(res[i].values.avg));
      const k = c.metrics.indexOf(m);
      series.push({ label: m === 'power.injected' ? t('injection') : c.names[k], stroke: LINE_COLOURS[k], width: 1.5,
        value: (u, v) => num(v, c.digits), spanGaps: false, points: { show: false } });
    });
    const u = draw(c.id, {
      series, bands,
      cursor: { sync: { key: 'hist' }, drag: { x: true, y: false } },
      scales: { x: { time: true, min: from / 1000, max: to / 1000 } },
      axes: [timeAxis(), { ...axis(), values: yFmt(c.digits), size: 60 }],
      hooks: { setSelect: [(self) => {
        if (self.select.width < 5) return;
        const a = self.posToVal(self.select.left, 'x') * 1000;
        const b = self.posToVal(self.select.left + self.select.width, 'x') * 1000;
        state.hist.back.push([state.hist.from, state.hist.to]);
        state.hist.from = a; state.hist.to = b; state.hist.preset = null;
        loadHistory().catch(fail);
      }] },
    }, data);
    u.over.addEventListener('dblclick', () => {
      const prev = state.hist.back.pop();
      if (prev) { [state.hist.from, state.hist.to] = prev; loadHistory().catch(fail); }
    });
  }));
}

// ---------------------------------------------------------------- energy

function periodStart(p, now = new Date()) {
  const d = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  if (p === 'day') d.setDate(d.getDate() - 30);
  if (p === 'week') { d.setDate(d.getDate() - ((d.getDay() + 6) % 7) - 7 * 11); }
  if (p === 'month') { d.setDate(1); d.setMonth(d.getMonth() - 11); }
  if (p === 'year') { d.setMonth(0, 1); d.setFullYear(d.getFullYear() - 2); }
  return d;
}
// Start of the period that contains now.
function currentStart(p) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  if (p === 'week') d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  if (p === 'month') d.setDate(1);
  if (p === 'year') d.setMonth(0, 1);
  return d.getTime();
}
function yearEarlier(p, ms) {
  const d = new Date(ms);
  // Days and weeks: 52 weeks back, same weekday; months and years: same calendar dates.
  if (p === 'day' || p === 'week') d.setDate(d.getDate() - 364);
  else d.setFullYear(d.getFullYear() - 1);
  return d.getTime();
}
function periodLabel(p, ms) {
  const o = p === 'year' ? { year: 'numeric' } : p === 'month' ? { month: 'short', year: 'numeric' } : { day: 'numeric', month: 'short', year: p === 'week' ? 'numeric' : undefined };
  return (p === 'week' ? (lang === 'fr' ? 'sem. du ' : 'week of ') : '') + new Date(ms).toLocaleDateString(LOCALE(), o);
}

async function loadEnergy() {
  const meter = state.meter;
  const { period, unit } = state.energy;
  for (const b of document.querySelectorAll('[data-period]')) b.setAttribute('aria-pressed', String(b.dataset.period === period));
  for (const b of document.querySelectorAll('[data-unit]')) b.setAttribute('aria-pressed', String(b.dataset.unit === unit));
  const from = periodStart(period).getTime();
  const to = Date.now();
  const q = (a, b) => `period=${period}&from=${Math.round(a)}&to=${Math.round(b)}`;
  const soft = (p) => p.catch((e) => { if (e.status === 404 || e.status === 400) return null; throw e; });
  // The current period is still running: compare it with the same stretch a year earlier
  // (hour by hour), not with the whole period.
  const lastStart = currentStart(period);
  const [cur, prev, prevPartial, inj] = await Promise.all([
    soft(api(`api/v1/meters/${enc(meter)}/energy?${q(from, to)}`)),
    soft(api(`api/v1/meters/${enc(meter)}/energy?${q(yearEarlier(period, from), yearEarlier(period, to))}`)),
    soft(api(`api/v1/meters/${enc(meter)}/energy?period=hour&from=${yearEarlier(period, lastStart)}&to=${yearEarlier(period, to)}`)),
    // Only producers have an injection index: asking others would log a 404 in the console.
    (await seriesOf(meter)).has('EAIT') ? soft(api(`api/v1/meters/${enc(meter)}/injection?${q(from, to)}`)) : null,
  ]);
  if (meter !== state.meter || period !== state.energy.period) return;
  if (!cur) { $('e-table').innerHTML = `<caption>${t('noEnergy')}</caption>`; return; }
  // The consumer's own contract needs its latest frame for index names.
  if (!state.latest.has(meter)) {
    try { const l = await api(`api/v1/meters/${enc(meter)}/latest`); state.latest.set(meter, l); } catch { /* names stay generic */ }
  }
  const eur = unit === 'eur';
  $('e-title').textContent = `${t('e.title')} (${eur ? cur.currency || '€' : 'kWh'})`;
  const ps = cur.periods;
  const labels = cur.indexes.filter((l) => ps.some((p) => p.energy_wh[l]));
  const val = (p, l) => (eur ? p.cost[l] ?? 0 : (p.energy_wh[l] ?? 0) / 1000);
  const stack = labels.map((l) => ({ label: l, name: indexName(l, meter), colour: indexColour(l, meter, cur.indexes.indexOf(l)), vals: ps.map((p) => val(p, l)) }));
  if (eur) stack.push({ label: 'sub', name: t('subscription'), colour: '#9aa4ae', vals: ps.map((p) => p.subscription) });
  const total = ps.map((p) => (eur ? p.total_cost : p.total_wh / 1000));
  // A year earlier with no index reading (before the history starts) is no data, not zero.
  const prevTotal = ps.map((_, i) => {
    const pp = prev?.periods?.[i];
    const p = i === ps.length - 1 && prevPartial ? { total_wh: prevPartial.total_wh, total_cost: prevPartial.total_cost, any: prevPartial.periods.some((h) => Object.values(h.energy_wh).some((v) => v != null)) } : pp && { ...pp, any: Object.values(pp.energy_wh).some((v) => v != null) };
    if (!p || !p.any) return null;
    return eur ? p.total_cost : p.total_wh / 1000;
  });
  const injVals = inj ? ps.map((_, i) => (inj.periods[i]?.wh != null ? inj.periods[i].wh / 1000 : null)) : null;
  const x = ps.map((p) => (p.start_ms + p.end_ms) / 2000);

  // Stacked bars in uPlot: series k carries the sum of indexes 0..k and is drawn from the
  // tallest down, so each visible segment is one index.
  const data = [x];
  const series = [{}];
  const bars = uPlot.paths.bars({ size: [0.7, 60] });
  const cum = stack.map((_, k) => ps.map((_, i) => stack.slice(0, k + 1).reduce((s, st) => s + st.vals[i], 0)));
  for (let k = stack.length - 1; k >= 0; k--) {
    data.push(cum[k]);
    series.push({ label: stack[k].name, fill: stack[k].colour, stroke: stack[k].colour, width: 0, paths: bars, points: { show: false } });
  }
  if (injVals && !eur) {
    data.push(injVals.map((v) => (v == null ? null : -v)));
    series.push({ label: t('injection'), fill: '#1a7f37', stroke: '#1a7f37', width: 0, paths: bars, points: { show: false } });
  }
  data.push(prevTotal);
  series.push({ label: t('lastYear'), stroke: css('--fg'), width: 1.5, dash: [4, 4], points: { show: true, size: 6, fill: css('--card') } });
  const half = x.length > 1 ? (x[1] - x[0]) / 2 : 43200;
  draw('c-energy', {
    series, legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: true, range: () => [x[0] - half, x[x.length - 1] + half] } },
    axes: [timeAxis(), { ...axis(), values: (u, v) => v.map((y) => (eur ? money(y, cur.currency) : num(y))), size: 80 }],
  }, data);
  const legend = stack.map((s) => [s.colour, s.name]);
  if (injVals && !eur) legend.push(['#1a7f37', t('injection')]);
  $('e-legend').innerHTML = legend.map(([c, name]) => `<li><i style="background:${c}"></i>${name}</li>`).join('')
    + `<li><i class="dashed"></i>${t('lastYear')}</li>`;

  // The same figures as a table (also what a screen reader gets).
  const fmt = (v) => (eur ? money(v, cur.currency) : num(v, 1));
  const head = `<tr><th scope="col">${t('period')}</th>${stack.map((s) => `<th scope="col">${s.name}</th>`).join('')}<th scope="col">${t('total')}${eur ? '' : ' (kWh)'}</th><th scope="col">${t('lastYear')}</th>${injVals ? `<th scope="col">${t('injection')} (kWh)</th>` : ''}</tr>`;
  const rows = ps.map((p, i) => `<tr><td>${periodLabel(period, p.start_ms)}</td>${stack.map((s) => `<td>${fmt(s.vals[i])}</td>`).join('')}<td><strong>${fmt(total[i])}</strong></td><td>${fmt(prevTotal[i])}</td>${injVals ? `<td>${num(injVals[i], 1)}</td>` : ''}</tr>`).reverse();
  const sum = (a) => a.reduce((s, v) => s + (v ?? 0), 0);
  const foot = `<tr><th scope="row">${t('total')}</th>${stack.map((s) => `<td>${fmt(sum(s.vals))}</td>`).join('')}<td><strong>${fmt(sum(total))}</strong></td><td>${fmt(sum(prevTotal))}</td>${injVals ? `<td>${num(sum(injVals), 1)}</td>` : ''}</tr>`;
  $('e-table').innerHTML = `<thead>${head}</thead><tbody>${rows.join('')}</tbody><tfoot>${foot}</tfoot>`;
}

// ---------------------------------------------------------------- devices

function diagnose(d, now) {
  const out = [];
  const tel = d.telemetry;
  const quiet = now - d.last_seen_ms;
  if (quiet > 120000) out.push(['bad', t('diag.silent', { s: duration(quiet) })]);
  const rejected = Object.values(d.rejected_groups ?? {}).reduce((a, b) => a + b, 0) + (tel?.counters?.rejected_groups ?? 0);
  const uartErrors = tel?.counters?.uart_errors ?? 0;
  if (d.frames_per_minute === 0 && quiet <= 120000) {
    // A device that talks but forwards no frame: bytes arriving but not decodable means the
    // wrong speed or mode; nothing at all means no signal.
    out.push(uartErrors > 0 || rejected > 0 || (tel && tel.line_mode === 'unknown' && uartErrors > 0)
      ? ['bad', t('diag.wrongMode')] : ['bad', t('diag.noSignal')]);
  }
  const groups = (d.frames || 1) * 30;
  const pct = (100 * rejected) / (groups + rejected);
  if (rejected > 0 && pct >= 0.5) out.push(['warn', t('diag.noisy', { p: num(pct, 1) })]);
  if (tel?.rssi_dbm != null && tel.rssi_dbm < -80) out.push(['warn', t('diag.weakWifi', { r: tel.rssi_dbm })]);
  if (tel && tel.buffer_fill > 0.25) out.push(['warn', t('diag.backlog', { p: num(tel.buffer_fill * 100) })]);
  if (d.clock_drift_s != null && Math.abs(d.clock_drift_s) > 60) out.push(['warn', t('diag.drift', { s: num(d.clock_drift_s) })]);
  if (!out.length) out.push(['', t('diag.ok')]);
  return out;
}

async function loadDevices() {
  const [{ devices }, { meters }] = await Promise.all([api('api/v1/devices'), api('api/v1/meters')]);
  const now = Date.now();
  const html = devices.map((d) => {
    const tel = d.telemetry;
    const modes = [...new Set((d.meters ?? []).map((m) => meters.find((x) => x.meter === m)?.mode).filter(Boolean))];
    const mode = (tel?.line_mode && tel.line_mode !== 'unknown' ? [tel.line_mode] : modes).map((m) => t('modes.' + m)).join(', ') || '—';
    const rej = Object.entries(d.rejected_groups ?? {}).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${num(v)}`).join(', ') || t('none');
    const row = (k, v) => `<dt>${t(k)}</dt><dd>${v}</dd>`;
    return `<article class="card dev"><h3>${esc(d.device)}</h3><dl>
      ${row('meters', (d.meters ?? []).map(esc).join(', ') || '—')}
      ${row('lastSeen', d.last_seen_ms ? t('secondsAgo', { s: duration(now - d.last_seen_ms) }) : '—')}
      ${row('mode', mode)}
      ${row('fpm', num(d.frames_per_minute))}
      ${row('frames', num(d.frames))}
      ${row('rejected', rej)}
      ${row('rssi', tel?.rssi_dbm != null ? `${tel.rssi_dbm} dBm` : '—')}
      ${row('buffer', tel ? `${num(tel.buffer_fill * 100, 1)} %` : '—')}
      ${row('drift', d.clock_drift_s != null ? `${num(d.clock_drift_s, 1)} s` : '—')}
      ${row('firmware', tel ? esc(tel.firmware_version) : '—')}
      </dl>${diagnose(d, now).map(([c, s]) => `<p class="diag ${c}">${s}</p>`).join('')}</article>`;
  });
  $('d-list').innerHTML = html.join('') || `<p>${t('none')}</p>`;
}
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

// ---------------------------------------------------------------- views

const VIEWS = { live: enterLive, history: loadHistory, energy: loadEnergy, devices: loadDevices };
function fail(e) { console.warn(e); status(t('error', { e: e.message })); }

async function show() {
  const v = (location.hash.slice(1) || 'live').split('?')[0];
  state.view = VIEWS[v] ? v : 'live';
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.dataset.view !== state.view;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === state.view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!state.meter) return;
  status('');
  const t0 = performance.now();
  try {
    await VIEWS[state.view]();
    // When the view has everything on screen: the browser tests read it.
    document.body.dataset.ready = state.view;
    document.body.dataset.readyMs = String(Math.round(performance.now() - t0));
  } catch (e) { fail(e); }
}

setInterval(() => { if (state.view === 'devices' && !document.hidden) loadDevices().catch(fail); }, 5000);

function wire() {
  window.addEventListener('hashchange', show);
  $('lang').addEventListener('click', () => {
    lang = lang === 'fr' ? 'en' : 'fr';
    localStorage.setItem('teleinfo.lang', lang);
    applyText();
    loadMeters().then(show).catch(fail);
  });
  $('meter').addEventListener('change', (e) => {
    state.meter = e.target.value;
    localStorage.setItem('teleinfo.meter', state.meter);
    delete document.body.dataset.ready;
    connectLive();
    show();
  });
  for (const b of document.querySelectorAll('[data-preset]')) b.addEventListener('click', () => { setPreset(b.dataset.preset); loadHistory().catch(fail); });
  const shift = (dir) => { const w = state.hist.to - state.hist.from; state.hist.from += dir * w / 2; state.hist.to += dir * w / 2; loadHistory().catch(fail); };
  $('h-prev').addEventListener('click', () => shift(-1));
  $('h-next').addEventListener('click', () => shift(1));
  $('h-apply').addEventListener('click', () => {
    const a = new Date($('h-from').value).getTime();
    const b = new Date($('h-to').value).getTime();
    if (a < b) { state.hist.back.push([state.hist.from, state.hist.to]); state.hist.from = a; state.hist.to = b; state.hist.preset = null; loadHistory().catch(fail); }
  });
  for (const b of document.querySelectorAll('[data-period]')) b.addEventListener('click', () => { state.energy.period = b.dataset.period; loadEnergy().catch(fail); });
  for (const b of document.querySelectorAll('[data-unit]')) b.addEventListener('click', () => { state.energy.unit = b.dataset.unit; loadEnergy().catch(fail); });
}

async function main() {
  applyText();
  wire();
  setPreset('day');
  try { await loadMeters(); } catch (e) { fail(e); return; }
  connectLive();
  await show();
}
main();
