// Times only the parse rows of the benchmark, each several times: the xmllint --stream floor and
// dmarcdesk parsing the XML and the gzip files, on the small and large sets. It is the quick loop
// for work on the parser; `npm run bench` gives every row once. Run with
// `node --import tsx scripts/bench/parse-rows.ts`. Settings, all optional:
//   DMARCDESK_BENCH_SMALL_REPORTS   reports of 20 records in the small set (default 2000)
//   DMARCDESK_BENCH_LARGE_RECORDS   records of the one large report (default 500000)
//   DMARCDESK_BENCH_REPEAT          runs of each row (default 3)
//   DMARCDESK_BENCH_SETS            sets to run, comma-separated (default small,large)
//   DMARCDESK_BENCH_CORPUS_DIR      folder for the corpus, kept and reused when it already contains
//                                   the sets; without it a temporary folder is written and removed
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { buildCli, checkCount } from './compare.ts';
import { writeCorpus, type CorpusPlan, type CorpusSet } from './corpus.ts';
import { timeProcess, type ProcessFigures } from './timing.ts';

const env = process.env;
const repeat = Number(env.DMARCDESK_BENCH_REPEAT ?? 3);
const selectedSets = (env.DMARCDESK_BENCH_SETS ?? 'small,large').split(',');
const plans: CorpusPlan[] = [
  {
    name: 'small',
    reports: Number(env.DMARCDESK_BENCH_SMALL_REPORTS ?? 2000),
    recordsPerReport: 20,
  },
  {
    name: 'large',
    reports: 1,
    recordsPerReport: Number(env.DMARCDESK_BENCH_LARGE_RECORDS ?? 500_000),
  },
].filter((plan) => selectedSets.includes(plan.name));

/** Returns the files of a set written earlier, in the order writeCorpus wrote them. */
function listFiles(folder: string, form: string): string[] {
  return readdirSync(join(folder, form))
    .sort()
    .map((name) => join(folder, form, name));
}

/** Reuses a set already in the folder when its XML file count matches the plan. */
function existingSet(dir: string, plan: CorpusPlan): CorpusSet | null {
  const folder = join(dir, plan.name);
  if (!existsSync(join(folder, 'xml'))) return null;
  const xmlFiles = listFiles(folder, 'xml');
  if (xmlFiles.length !== plan.reports) return null;
  return {
    ...plan,
    xmlFiles,
    gzipFiles: listFiles(folder, 'gzip'),
    mailFiles: listFiles(folder, 'mail'),
    mbox: join(folder, 'all.mbox'),
    xmlBytes: 0,
  };
}

function describe(figures: ProcessFigures): string {
  if (figures.failure !== null) return `failed: ${figures.failure}`;
  return `${figures.wallSeconds.toFixed(2)} s wall, ${figures.cpuSeconds.toFixed(2)} s CPU, ${figures.maxRssMiB.toFixed(0)} MiB`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const corpusDir = env.DMARCDESK_BENCH_CORPUS_DIR;
const workDir = corpusDir ?? mkdtempSync(join(tmpdir(), 'dmarcdesk-bench-'));
try {
  const sets: CorpusSet[] = [];
  for (const plan of plans) {
    const found = corpusDir === undefined ? null : existingSet(workDir, plan);
    if (found !== null) {
      sets.push(found);
      continue;
    }
    process.stderr.write(`writing the ${plan.name} set in ${workDir}\n`);
    sets.push(...(await writeCorpus(workDir, [plan])));
  }
  const cli = await buildCli();
  const node = process.execPath;
  const lines: string[] = [
    '| set | tool | runs wall s | median wall s | x xmllint | median CPU s | x xmllint | peak RSS MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const set of sets) {
    const records = set.reports * set.recordsPerReport;
    const rows: { tool: string; command: string[]; expected: number | null }[] = [
      {
        tool: 'xmllint --stream',
        command: ['xmllint', '--stream', '--noout', ...set.xmlFiles],
        expected: null,
      },
      {
        tool: 'dmarcdesk, XML files',
        command: [node, cli, 'parse', ...set.xmlFiles],
        expected: records,
      },
      {
        tool: 'dmarcdesk, gzip files',
        command: [node, cli, 'parse', ...set.gzipFiles],
        expected: records,
      },
    ];
    const runs = new Map<string, ProcessFigures[]>(rows.map((row) => [row.tool, []]));
    // The rows take turns, so that a slow spell of the shared machine affects all of them.
    for (let run = 0; run < repeat; run += 1) {
      for (const row of rows) {
        let figures = timeProcess(row.command, { timeoutSeconds: 300 });
        if (row.expected !== null) figures = checkCount(figures, row.expected);
        process.stderr.write(`${set.name}, ${row.tool}, run ${run + 1}: ${describe(figures)}\n`);
        runs.get(row.tool)?.push(figures);
      }
    }
    // A failed run counts as NaN, so that its row shows NaN instead of a figure.
    const wallsOf = (tool: string) =>
      (runs.get(tool) ?? []).map((run) => (run.failure === null ? run.wallSeconds : Number.NaN));
    const cpusOf = (tool: string) =>
      (runs.get(tool) ?? []).map((run) => (run.failure === null ? run.cpuSeconds : Number.NaN));
    const floorWall = median(wallsOf('xmllint --stream'));
    const floorCpu = median(cpusOf('xmllint --stream'));
    for (const row of rows) {
      const walls = wallsOf(row.tool);
      const wall = median(walls);
      const cpu = median(cpusOf(row.tool));
      const rss = Math.max(...(runs.get(row.tool) ?? []).map((run) => run.maxRssMiB));
      lines.push(
        `| ${set.name} | ${row.tool} | ${walls.map((value) => value.toFixed(2)).join(', ')} | ` +
          `${wall.toFixed(2)} | ${(wall / floorWall).toFixed(2)} | ${cpu.toFixed(2)} | ` +
          `${(cpu / floorCpu).toFixed(2)} | ${rss.toFixed(0)} |`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  if (corpusDir === undefined) rmSync(workDir, { recursive: true, force: true });
}
