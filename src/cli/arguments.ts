// Parses the command line and rejects every word that the command would otherwise ignore:
// unknown options, options the command does not read, repeats and extra arguments.
import { parseArgs } from 'node:util';
import { CliError } from './api-client.ts';

export const OPTIONS = {
  name: { type: 'string' },
  email: { type: 'string' },
  role: { type: 'string' },
  account: { type: 'string' },
  customer: { type: 'string' },
  domain: { type: 'string' },
  id: { type: 'string' },
  status: { type: 'string' },
  'max-failed': { type: 'string' },
  halopsa: { type: 'boolean' },
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

/** The options each command reads, besides --help. Commands that call the service also read --url and --token. */
const COMMAND_OPTIONS: Record<string, { options: OptionName[]; callsService: boolean }> = {
  'account create': { options: ['name', 'halopsa'], callsService: false },
  'account list': { options: [], callsService: false },
  'token create': { options: ['account', 'name'], callsService: false },
  'user create': { options: ['account', 'email', 'role', 'name'], callsService: false },
  'secrets reencrypt': { options: [], callsService: false },
  'customer list': { options: [], callsService: true },
  'customer create': { options: ['name'], callsService: true },
  'domain list': { options: ['customer'], callsService: true },
  'domain add': { options: ['customer', 'name', 'status'], callsService: true },
  'domain status': { options: ['id', 'status'], callsService: true },
  'domain remove': { options: ['id'], callsService: true },
  'threshold set': { options: ['domain', 'max-failed'], callsService: true },
  'report upload': { options: [], callsService: true },
  'alert list': { options: [], callsService: true },
  'halopsa status': { options: [], callsService: true },
};

/** The command that takes arguments after its name, which are the files to upload. */
const FILE_COMMAND = 'report upload';

/** A parsed command line. `command` is empty when the usage text should be printed. */
export interface CommandLine {
  command: string;
  values: Values;
  /** The arguments after the command name. */
  operands: string[];
}

const SEE_HELP = 'Run dmarcdesk --help for the commands and their options.';

/** Parse `argv`, or throw a CliError that names the word at fault. */
export function parseCommandLine(argv: string[]): CommandLine {
  // Non-strict parsing returns unknown options as tokens, so the CLI can name them in its own
  // words. checkOptionTokens then applies the checks that strict mode would.
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  checkOptionTokens(tokens);

  const [noun, verb, ...operands] = positionals;
  if (values.help || !noun) return { command: '', values: values as Values, operands: [] };

  const command = `${noun} ${verb ?? ''}`.trim();
  const spec = COMMAND_OPTIONS[command];
  if (!spec) throw new CliError(`Unknown command "${command}". ${SEE_HELP}`);

  const accepted: OptionName[] = [
    ...spec.options,
    ...(spec.callsService ? (['url', 'token'] as const) : []),
  ];
  for (const name of Object.keys(values)) {
    if (name === 'help' || accepted.includes(name as OptionName)) continue;
    const list = joinWithAnd(accepted.map((option) => `--${option}`));
    throw new CliError(
      `${command} does not take --${name}. ` +
        (list ? `Its options are ${list}.` : 'It takes no options.') +
        ` ${SEE_HELP}`,
    );
  }

  if (command !== FILE_COMMAND && operands.length > 0) {
    const extra = operands.map((word) => JSON.stringify(word)).join(', ');
    throw new CliError(
      `${command} takes no arguments after the command name, but got ${extra}. ` +
        `Give each value with its option, such as --name NAME. ${SEE_HELP}`,
    );
  }
  return { command, values: values as Values, operands };
}

type Token = ReturnType<typeof parseArgs>['tokens'] extends (infer T)[] | undefined ? T : never;

/**
 * Reject unknown options, a missing or unexpected value, and an option given more than once.
 * parseArgs keeps the last value, so a repeated option would otherwise drop the earlier values
 * silently. No option of the CLI takes a list.
 */
function checkOptionTokens(tokens: Token[]): void {
  const counts = new Map<string, number>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = OPTIONS[token.name as OptionName] as { type: string } | undefined;
    if (!option) throw new CliError(`Unknown option ${token.rawName}. ${SEE_HELP}`);
    if (option.type === 'boolean' && token.value !== undefined)
      throw new CliError(
        `--${token.name} takes no value, but got ${JSON.stringify(token.value)}. ` +
          `Give --${token.name} alone.`,
      );
    if (option.type === 'string') checkValue(token);
    counts.set(token.name, (counts.get(token.name) ?? 0) + 1);
  }
  for (const [name, count] of counts) {
    if (count > 1) throw new CliError(`--${name} is given ${count} times; give it once.`);
  }
}

function checkValue(token: Token & { kind: 'option' }): void {
  const metavariable = token.name.toUpperCase().replace('-', '_');
  if (token.value === undefined)
    throw new CliError(
      `--${token.name} is missing its value. Give --${token.name} ${metavariable}.`,
    );
  // Non-strict parseArgs takes the "--halopsa" of `--name --halopsa` as the value of --name.
  if (!token.inlineValue && token.value.startsWith('-'))
    throw new CliError(
      `--${token.name} is missing its value, because the next word ${JSON.stringify(token.value)} ` +
        `starts with "-". Give --${token.name} ${metavariable}, or --${token.name}=VALUE for a ` +
        'value that starts with "-".',
    );
}

function joinWithAnd(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}
