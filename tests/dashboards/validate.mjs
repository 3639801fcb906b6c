#!/usr/bin/env node
// Offline checks of StreamGate's Grafana dashboards.
//
//   node tests/dashboards/validate.mjs [--metrics docs/METRICS.md] dashboards/*.json
//
// 1. Grafana's own schema: the `Dashboard` type of @grafana/schema (with the
//    import envelope, see schema.ts) and each panel plugin's `Options` and
//    `FieldConfig` are turned into JSON schemas by ts-json-schema-generator
//    (objects closed: an unknown or misspelt key is an error) and every file
//    is validated with Ajv. Panel options may leave keys out (Grafana fills
//    in the plugin's defaults), so `required` is dropped from those two.
//    Targets are checked against the Prometheus query type in schema.ts.
// 2. Importability: a `DS_PROMETHEUS` datasource input, `__requires` naming
//    every panel plugin used, the schemaVersion @grafana/schema writes, uid,
//    title, the `streamgate` tag, and the `datasource`, `job` and `service`
//    template variables.
// 3. Panels: unique ids, a layout inside the 24-column grid, a description,
//    a Prometheus datasource given as `${DS_PROMETHEUS}` or the datasource
//    variable, non-empty targets with unique refIds (text panels: content),
//    and only defined variables referenced.
// 4. Queries (panel targets, annotations, variable queries): every metric
//    name is one docs/METRICS.md documents (backtick-quoted names, plus the
//    histogram `_bucket`/`_sum`/`_count` series and the window processor's
//    `<name>_window_*` series), one of the few PENDING ones below, or `up`.
//
// Exit status 0 when every file passes, 1 otherwise (2 on bad usage).

import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { defaultDashboard } from '@grafana/schema';
import Ajv from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

// Series used by panels while their exporter is being written. Each stays
// here only until docs/METRICS.md documents it (the run then says so).
const PENDING = new Map([
  ['streamgate_profiling_pushes_total', 'pprof push to Pyroscope (a later issue)'],
]);
// Prometheus' own series about its scrape of StreamGate.
const PROMETHEUS_SERIES = new Set(['up']);

// Panel plugin id → the schema.ts types of its options and custom field config.
const PANEL_TYPES = {
  bargauge: { name: 'Bar gauge', options: 'BargaugeOptions' },
  gauge: { name: 'Gauge', options: 'GaugeOptions' },
  stat: { name: 'Stat', options: 'StatOptions' },
  'state-timeline': { name: 'State timeline', options: 'StateTimelineOptions', custom: 'StateTimelineFieldConfig' },
  table: { name: 'Table', options: 'TableOptions', custom: 'TableFieldConfig' },
  text: { name: 'Text', options: 'TextOptions' },
  timeseries: { name: 'Time series', options: 'TimeseriesOptions', custom: 'TimeseriesFieldConfig' },
};

// How panels and variables may name their datasource.
const DATASOURCE_UIDS = new Set(['${DS_PROMETHEUS}', '${datasource}', '$datasource']);
// Variables Grafana defines itself.
const BUILTIN_VARIABLES = new Set([
  '__rate_interval', '__rate_interval_ms', '__interval', '__interval_ms', '__range', '__range_s',
  '__range_ms', '__from', '__to', '__all', '__dashboard', '__org', '__user', '__name', '__field',
  '__series', '__value', '__data', '__timezone',
]);
const PROMQL_KEYWORDS = new Set([
  'and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left',
  'group_right', 'inf', 'nan', 'start', 'end', 'atan2',
]);

function usage(message) {
  console.error(`validate.mjs: ${message}`);
  console.error('usage: node tests/dashboards/validate.mjs [--metrics docs/METRICS.md] DASHBOARD.json...');
  process.exit(2);
}

// ---------------------------------------------------------------- schemas

/** Drops `required` everywhere in a JSON schema (options may omit keys). */
function optional(schema) {
  if (Array.isArray(schema)) {
    schema.forEach(optional);
  } else if (schema && typeof schema === 'object') {
    if (Array.isArray(schema.required)) delete schema.required;
    for (const key of ['properties', 'definitions', '$defs', 'patternProperties']) {
      for (const sub of Object.values(schema[key] ?? {})) optional(sub);
    }
    for (const key of ['items', 'additionalProperties', 'anyOf', 'oneOf', 'allOf', 'not', 'then', 'else', 'if']) {
      if (schema[key] && typeof schema[key] === 'object') optional(schema[key]);
    }
  }
  return schema;
}

function compileSchemas() {
  const generator = createGenerator({
    path: join(HERE, 'schema.ts'),
    skipTypeCheck: true,
    additionalProperties: false,
    // Inline every type: @grafana/schema has two `DataSourceRef`s.
    expose: 'none',
    topRef: false,
    jsDoc: 'none',
  });
  const ajv = new Ajv({ allErrors: true, strict: false });
  const dashboard = ajv.compile(generator.createSchema('ImportableDashboard'));
  const target = ajv.compile(generator.createSchema('PrometheusQuery'));
  const panels = {};
  for (const [type, names] of Object.entries(PANEL_TYPES)) {
    panels[type] = {
      options: ajv.compile(optional(generator.createSchema(names.options))),
      custom: names.custom ? ajv.compile(optional(generator.createSchema(names.custom))) : null,
    };
  }
  return { dashboard, target, panels };
}

function schemaErrors(validate, value, where) {
  if (validate(value)) return [];
  return closestBranch(validate.errors).map((e) => {
    const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : '';
    return `${where}${e.instancePath || '/'}: ${e.message}${extra}`;
  });
}

/**
 * A value that matches no branch of an `anyOf` (a panel is `Panel | RowPanel`)
 * gets the errors of every branch: keep only those of the branch it came
 * closest to, and drop the "must match a schema in anyOf" summary.
 */
function closestBranch(errors) {
  const branchOf = (e) => /^(.*)\/anyOf\/(\d+)\//.exec(e.schemaPath);
  const counts = new Map(); // "instance|anyOf path" -> Map(branch -> count)
  for (const e of errors) {
    const m = branchOf(e);
    if (!m) continue;
    const owner = errors.find((o) => o.keyword === 'anyOf' && o.schemaPath === `${m[1]}/anyOf` && e.instancePath.startsWith(o.instancePath));
    if (!owner) continue;
    const key = `${owner.instancePath}|${m[1]}`;
    const branches = counts.get(key) ?? new Map();
    branches.set(m[2], (branches.get(m[2]) ?? 0) + 1);
    counts.set(key, branches);
  }
  const best = new Map([...counts].map(([key, branches]) => [key, [...branches].sort((a, b) => a[1] - b[1])[0][0]]));
  return errors.filter((e) => {
    if (e.keyword === 'anyOf' && best.has(`${e.instancePath}|${e.schemaPath.replace(/\/anyOf$/, '')}`)) return false;
    const m = branchOf(e);
    if (!m) return true;
    for (const [key, branch] of best) {
      const [instance, path] = key.split('|');
      if (path === m[1] && e.instancePath.startsWith(instance)) return branch === m[2];
    }
    return true;
  });
}

// ---------------------------------------------------------------- metric names

/** The metric names docs/METRICS.md documents, from its `code spans`. */
function documentedNames(markdown) {
  const names = new Set();
  for (const [, span] of markdown.matchAll(/`([^`\n]+)`/g)) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?$/.exec(span.trim());
    if (m && m[1].includes('_')) names.add(m[1]);
  }
  return names;
}

function isKnownName(name, documented) {
  if (documented.has(name) || PENDING.has(name) || PROMETHEUS_SERIES.has(name)) return true;
  const histogram = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (histogram && documented.has(histogram[1])) return true;
  // Window processor: `<name>_window_p95_<unit>` etc. for a documented
  // `<name>_<unit>`; `<name>_window_observations` and `_rate_per_second`.
  const quantile = /^(.+)_window_(p\d+(?:_\d+)?|mean|min|max)_([a-z]+)$/.exec(name);
  if (quantile && documented.has(`${quantile[1]}_${quantile[3]}`)) return true;
  const count = /^(.+)_window_(observations|rate_per_second)$/.exec(name);
  if (count && [...documented].some((d) => d.startsWith(`${count[1]}_`))) return true;
  return false;
}

/** Metric names in a PromQL expression (template variables allowed). */
export function metricNames(expr) {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // template variables
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/(^|[^\w.])\d[\w.+-]*/g, '$1 '); // numbers and durations
  const names = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = s.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation
    if (PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

/** Brackets balance outside strings (a cheap syntax check; Prometheus parses for real in tests/dashboards.rs). */
function balanced(expr) {
  const s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const stack = [];
  const pairs = { ')': '(', ']': '[', '}': '{' };
  for (const c of s) {
    if ('([{'.includes(c)) stack.push(c);
    else if (c in pairs && stack.pop() !== pairs[c]) return false;
  }
  return stack.length === 0;
}

/** Names of the template variables a string references. */
function variableRefs(text) {
  const refs = [];
  for (const m of String(text).matchAll(/\$(?:\{(\w+)(?:[:.][^}]*)?\}|(\w+))/g)) {
    refs.push(m[1] ?? m[2]);
  }
  return refs;
}

/** The PromQL inside a Prometheus variable query. */
function variableExpr(query) {
  const q = typeof query === 'string' ? query : query?.query ?? '';
  const labelValues = /^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$/s.exec(q);
  if (labelValues) return labelValues[1];
  const queryResult = /^\s*query_result\((.*)\)\s*$/s.exec(q);
  if (queryResult) return queryResult[1];
  return null;
}

// ---------------------------------------------------------------- checks

function allPanels(panels) {
  const out = [];
  for (const p of panels ?? []) {
    out.push(p);
    if (p.type === 'row') out.push(...allPanels(p.panels));
  }
  return out;
}

function checkDashboard(d, schemas, documented) {
  const errors = [...schemaErrors(schemas.dashboard, d, '')];
  const err = (m) => errors.push(m);

  // Importable as it is.
  const input = (d.__inputs ?? []).find((i) => i.name === 'DS_PROMETHEUS');
  if (!input || input.type !== 'datasource' || input.pluginId !== 'prometheus') {
    err('__inputs: needs {name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus"}');
  }
  if (!JSON.stringify(d).includes('${DS_PROMETHEUS}')) err('${DS_PROMETHEUS} is never used');
  const requires = d.__requires ?? [];
  const required = (type, id) => requires.some((r) => r.type === type && r.id === id);
  if (!required('grafana', 'grafana')) err('__requires: no grafana entry');
  if (!required('datasource', 'prometheus')) err('__requires: no prometheus datasource entry');
  if (d.schemaVersion !== defaultDashboard.schemaVersion) {
    err(`schemaVersion ${JSON.stringify(d.schemaVersion)}: @grafana/schema writes ${defaultDashboard.schemaVersion}`);
  }
  if (typeof d.uid !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(d.uid)) err(`uid ${JSON.stringify(d.uid)}: 1-40 of [A-Za-z0-9_-]`);
  if (d.id != null) err('id must be null or absent (Grafana assigns it on import)');
  if (!d.title) err('no title');
  if (!(d.tags ?? []).includes('streamgate')) err('tags: needs "streamgate"');

  // Template variables.
  const vars = new Map((d.templating?.list ?? []).map((v) => [v.name, v]));
  const ds = vars.get('datasource');
  if (!ds || ds.type !== 'datasource' || ds.query !== 'prometheus') {
    err('templating: needs a `datasource` variable of type datasource, query prometheus');
  }
  for (const name of ['job', 'service']) {
    const v = vars.get(name);
    if (!v || v.type !== 'query' || !v.multi || !v.includeAll || !/^\s*label_values\(/.test(String(v.query))) {
      err(`templating: needs a \`${name}\` query variable with label_values(...), multi and include All`);
    }
  }
  const known = (ref) => vars.has(ref) || BUILTIN_VARIABLES.has(ref) || /^\d+$/.test(ref);
  const checkRefs = (where, text) => {
    for (const ref of variableRefs(text)) {
      if (!known(ref)) err(`${where}: references undefined variable $${ref}`);
    }
  };
  const checkDatasource = (where, dsRef) => {
    if (!dsRef || dsRef.type !== 'prometheus' || !DATASOURCE_UIDS.has(dsRef.uid)) {
      err(`${where}: datasource must be {type: "prometheus", uid: "\${DS_PROMETHEUS}" or "\${datasource}"}, is ${JSON.stringify(dsRef)}`);
    }
  };
  let queries = 0;
  const checkExpr = (where, expr) => {
    queries += 1;
    if (typeof expr !== 'string' || !expr.trim()) {
      err(`${where}: empty query`);
      return;
    }
    if (!balanced(expr)) err(`${where}: unbalanced brackets in ${expr}`);
    checkRefs(where, expr);
    for (const name of metricNames(expr)) {
      if (!isKnownName(name, documented)) {
        err(`${where}: metric \`${name}\` is not documented in docs/METRICS.md`);
      }
    }
  };
  for (const v of vars.values()) {
    const where = `variable ${v.name}`;
    if (v.type === 'query') {
      checkDatasource(where, v.datasource);
      const expr = variableExpr(v.query);
      if (expr === null) err(`${where}: query must be label_values(...) or query_result(...)`);
      else checkExpr(where, expr);
    }
  }

  // Annotations.
  for (const a of d.annotations?.list ?? []) {
    if (a.builtIn) continue;
    const where = `annotation ${JSON.stringify(a.name)}`;
    checkDatasource(where, a.datasource);
    checkExpr(where, a.target?.expr);
  }
  for (const link of d.links ?? []) checkRefs(`link ${JSON.stringify(link.title)}`, link.url ?? '');

  // Panels.
  const panels = allPanels(d.panels);
  const ids = new Map();
  for (const p of panels) {
    const where = `panel ${p.id} ${JSON.stringify(p.title ?? '')}`;
    if (!Number.isInteger(p.id)) err(`${where}: id must be an integer`);
    else if (ids.has(p.id)) err(`${where}: id ${p.id} also used by ${JSON.stringify(ids.get(p.id))}`);
    else ids.set(p.id, p.title);
    const g = p.gridPos;
    if (!g || g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > 24) {
      err(`${where}: gridPos ${JSON.stringify(g)} outside the 24-column grid`);
    }
    checkRefs(where, p.title ?? '');
    if (p.type === 'row') continue;

    const plugin = PANEL_TYPES[p.type];
    if (!plugin) {
      err(`${where}: panel type ${p.type} is not checked: add it to PANEL_TYPES and schema.ts`);
      continue;
    }
    if (!required('panel', p.type)) err(`${where}: __requires lists no panel ${p.type}`);
    errors.push(...schemaErrors(schemas.panels[p.type].options, p.options ?? {}, `${where} options`));
    if (schemas.panels[p.type].custom && p.fieldConfig?.defaults?.custom) {
      errors.push(...schemaErrors(schemas.panels[p.type].custom, p.fieldConfig.defaults.custom,
        `${where} fieldConfig.defaults.custom`));
    }
    if (!p.description) err(`${where}: no description`);
    if (p.repeat) {
      const v = vars.get(p.repeat);
      if (!v || !(v.multi || v.includeAll)) err(`${where}: repeats over ${p.repeat}, not a multi-value variable`);
    }
    if (p.type === 'text') {
      if (!p.options?.content?.trim()) err(`${where}: text panel without content`);
      checkRefs(where, p.options?.content ?? '');
      continue;
    }
    checkDatasource(where, p.datasource);
    const targets = p.targets ?? [];
    if (targets.length === 0) err(`${where}: no targets`);
    const refIds = new Set();
    for (const t of targets) {
      const tw = `${where} target ${t.refId}`;
      if (!t.refId || refIds.has(t.refId)) err(`${tw}: refId missing or repeated`);
      refIds.add(t.refId);
      errors.push(...schemaErrors(schemas.target, t, tw));
      if (t.datasource) checkDatasource(tw, t.datasource);
      checkExpr(tw, t.expr);
    }
  }
  return { errors, panels: panels.filter((p) => p.type !== 'row').length, queries };
}

// ---------------------------------------------------------------- main

function main(argv) {
  let metricsPath = join(ROOT, 'docs', 'METRICS.md');
  const files = [];
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--metrics') {
      metricsPath = argv[i + 1] ?? usage('--metrics needs a path');
      i += 1;
    } else if (argv[i].startsWith('-')) {
      usage(`unknown option ${argv[i]}`);
    } else {
      files.push(argv[i]);
    }
  }
  if (files.length === 0) usage('no dashboard given');

  const documented = documentedNames(readFileSync(metricsPath, 'utf8'));
  for (const [name, why] of PENDING) {
    if (documented.has(name)) {
      console.log(`note: ${name} (${why}) is now in ${relative(process.cwd(), metricsPath)}: drop it from PENDING in validate.mjs`);
    }
  }
  const schemas = compileSchemas();
  const uids = new Map();
  let failed = 0;
  for (const file of files) {
    let errors;
    let summary = '';
    try {
      const d = JSON.parse(readFileSync(file, 'utf8'));
      const result = checkDashboard(d, schemas, documented);
      errors = result.errors;
      summary = `${result.panels} panels, ${result.queries} queries`;
      if (uids.has(d.uid)) errors.push(`uid ${d.uid} also used by ${uids.get(d.uid)}`);
      uids.set(d.uid, file);
    } catch (e) {
      errors = [`cannot read: ${e.message}`];
    }
    if (errors.length === 0) {
      console.log(`ok      ${file}: ${summary}`);
    } else {
      failed += 1;
      console.log(`FAILED  ${file}:`);
      for (const e of errors) console.log(`  - ${e}`);
    }
  }
  console.log(`dashboards: ${files.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main(process.argv.slice(2));
