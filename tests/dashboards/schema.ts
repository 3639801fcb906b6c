// The types StreamGate's dashboards are checked against (validate.mjs turns
// them into JSON schemas with ts-json-schema-generator).
//
// `Dashboard` and the panel plugins' `Options`/`FieldConfig` are Grafana's
// own, from @grafana/schema. Added here only what that type leaves out:
// - the import envelope Grafana writes on "Export for sharing externally"
//   (`__inputs`, `__requires`, `__elements`);
// - the Prometheus data source's query fields (its `PromQuery` lives in
//   @grafana/prometheus, not in @grafana/schema, which types queries only
//   as `DataQuery` with `refId`), for panel targets and annotations, and
//   the fields its annotation support keeps beside the `target`
//   (`titleFormat`, `textFormat`, `tagKeys`, `useValueForTime`).
import type { AnnotationQuery, Dashboard, DataQuery } from '@grafana/schema';
import type * as bargauge from './node_modules/@grafana/schema/dist/types/raw/composable/bargauge/panelcfg/x/types.gen';
import type * as gauge from './node_modules/@grafana/schema/dist/types/raw/composable/gauge/panelcfg/x/types.gen';
import type * as stat from './node_modules/@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/types.gen';
import type * as statetimeline from './node_modules/@grafana/schema/dist/types/raw/composable/statetimeline/panelcfg/x/types.gen';
import type * as table from './node_modules/@grafana/schema/dist/types/raw/composable/table/panelcfg/x/types.gen';
import type * as text from './node_modules/@grafana/schema/dist/types/raw/composable/text/panelcfg/x/types.gen';
import type * as timeseries from './node_modules/@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/types.gen';

/** A value the importer asks for (`${DS_PROMETHEUS}`). */
export interface DashboardInput {
  name: string;
  label: string;
  description?: string;
  type: 'datasource' | 'constant';
  pluginId?: string;
  pluginName?: string;
  value?: string;
}

/** A plugin or Grafana version the dashboard needs. */
export interface DashboardRequirement {
  type: 'grafana' | 'datasource' | 'panel';
  id: string;
  name: string;
  version: string;
}

/** A Prometheus query: a panel target or an annotation's target. */
export interface PrometheusQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  intervalFactor?: number;
  exemplar?: boolean;
  editorMode?: 'code' | 'builder';
}

/** An annotation query with the Prometheus data source's extra fields. */
export interface PrometheusAnnotationQuery extends Omit<AnnotationQuery, 'target'> {
  target?: PrometheusQuery;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

/** A dashboard as Grafana's import accepts it. */
export interface ImportableDashboard extends Omit<Dashboard, 'annotations'> {
  __inputs: DashboardInput[];
  __requires: DashboardRequirement[];
  __elements?: Record<string, unknown>;
  annotations?: { list?: PrometheusAnnotationQuery[] };
}

// Panel plugins: `options` and `fieldConfig.defaults.custom` by panel type.
export type BargaugeOptions = bargauge.Options;
export type GaugeOptions = gauge.Options;
export type StatOptions = stat.Options;
export type StateTimelineOptions = statetimeline.Options;
export type StateTimelineFieldConfig = statetimeline.FieldConfig;
export type TableOptions = table.Options;
export type TableFieldConfig = table.FieldConfig;
export type TextOptions = text.Options;
export type TimeseriesOptions = timeseries.Options;
export type TimeseriesFieldConfig = timeseries.FieldConfig;
