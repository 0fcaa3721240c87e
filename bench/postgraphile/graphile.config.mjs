// PostGraphile as bench/compare.py runs it: the amber preset (given on the command line),
// simplified inflection (`report.sectorFigures`, not `sectorFiguresByReportId`), nothing a
// benchmark would pay for without asking (no GraphiQL, no explain, no schema watching).
import { PgSimplifyInflectionPreset } from "@graphile/simplify-inflection";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PgSimplifyInflectionPreset],
  grafserv: {
    graphiql: false,
    watch: false,
  },
  grafast: {
    explain: false,
  },
};

export default preset;
