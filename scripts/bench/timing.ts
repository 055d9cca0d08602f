// Times whole processes under GNU time (/usr/bin/time -v), pinned to one core with taskset.
import { spawnSync } from 'node:child_process';

export interface ProcessFigures {
  wallSeconds: number;
  cpuSeconds: number;
  /** The largest peak RSS of the processes timed, in MiB. */
  maxRssMiB: number;
  processes: number;
  stdout: string;
  /** Set when a process failed, timed out or was killed; the figures are then not comparable. */
  failure: string | null;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutSeconds?: number;
  /** Address-space limit in bytes, so that a tool that reads a report whole cannot exhaust memory. */
  memoryLimitBytes?: number;
  /** Pin to the first core; default true. */
  pin?: boolean;
}

function seconds(text: string, label: string): number {
  const match = new RegExp(`${label}: ([0-9.:]+)`).exec(text);
  if (!match) return Number.NaN;
  const parts = (match[1] ?? '').split(':').map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

/** Runs one command and returns its figures. */
export function timeProcess(command: string[], options: RunOptions = {}): ProcessFigures {
  const pinned = options.pin === false ? [] : ['taskset', '-c', '0'];
  const limited = options.memoryLimitBytes
    ? ['prlimit', `--as=${options.memoryLimitBytes}`, '--']
    : [];
  const limit = options.timeoutSeconds ?? 900;
  // timeout kills the whole process group it starts, children of a shell loop included. Killing
  // GNU time alone would leave the measured process running and loading the machine.
  const argv = [
    '/usr/bin/time',
    '-v',
    'timeout',
    '-s',
    'KILL',
    String(limit),
    ...pinned,
    ...limited,
    ...command,
  ];
  const result = spawnSync(argv[0] as string, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: (limit + 60) * 1000,
    killSignal: 'SIGKILL',
  });
  const report = result.stderr ?? '';
  const figures: ProcessFigures = {
    wallSeconds: seconds(report, 'Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)'),
    cpuSeconds:
      seconds(report, 'User time \\(seconds\\)') + seconds(report, 'System time \\(seconds\\)'),
    maxRssMiB: Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(report)?.[1] ?? 0) / 1024,
    processes: 1,
    stdout: result.stdout ?? '',
    failure: null,
  };
  if (result.error) {
    figures.failure = result.error.message;
  } else if (result.status === 137) {
    // The status timeout returns when it had to kill the command.
    figures.failure = `stopped after ${limit} s`;
  } else if (result.status !== 0) {
    const last = report.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('\t'));
    figures.failure = `exit ${result.status}: ${last.slice(-1)[0]?.slice(0, 200) ?? ''}`;
  }
  return figures;
}

/**
 * Runs `command FILE` once per file in turn, from one shell that GNU time watches, so that the
 * times of every process are added (the kernel counts waited-for children) and the peak RSS is
 * that of the largest. The loop stops at the first process that fails.
 */
export function timeLoop(
  command: string[],
  files: string[],
  options: RunOptions = {},
): ProcessFigures {
  const script = `for file do ${command.map((part) => `'${part}'`).join(' ')} "$file" > /dev/null || exit 1; done`;
  return timeProcess(['sh', '-c', script, 'sh', ...files], options);
}
