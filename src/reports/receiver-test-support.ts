import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Helpers for the receiver tests: a throwaway certificate and a throwaway Dovecot server. */

/** Find a free loopback port, for servers such as Dovecot that cannot be given port 0. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Make a self-signed certificate for localhost and 127.0.0.1 with openssl, valid for two days. */
export function makeCertificate(folder: string): {
  certPath: string;
  keyPath: string;
  cert: Buffer;
} {
  const certPath = join(folder, 'cert.pem');
  const keyPath = join(folder, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { certPath, keyPath, cert: readFileSync(certPath) };
}

export interface RunningDovecot {
  port: number;
  user: string;
  password: string;
  /** Stop the master process by its pid and remove the folder. */
  stop(): Promise<void>;
}

/**
 * Start Dovecot on 127.0.0.1 with one user and plain-text login, from a config in a fresh
 * folder that reads nothing from /etc/dovecot. It runs as root and delivers to maildirs owned by
 * nobody, since Dovecot runs mail processes as the userdb user.
 */
export async function startDovecot(): Promise<RunningDovecot> {
  if (!existsSync('/usr/sbin/dovecot')) {
    throw new Error(
      'Dovecot is not installed; install it with: apt-get install -y --no-install-recommends dovecot-imapd',
    );
  }
  const folder = mkdtempSync(join(tmpdir(), 'dmarcdesk-dovecot-'));
  // Dovecot's auth and mail processes run as other users, so they must be able to enter it.
  chmodSync(folder, 0o755);
  const port = await freePort();
  const user = 'reports@mailbox.test';
  const password = 'mailbox-secret';
  const mailFolder = join(folder, 'mail');
  mkdirSync(mailFolder);
  execFileSync('chown', ['nobody:nogroup', mailFolder]);
  writeFileSync(join(folder, 'passwd'), `${user}:{PLAIN}${password}\n`);
  const config = [
    'protocols = imap',
    'listen = 127.0.0.1',
    `base_dir = ${join(folder, 'run')}`,
    `log_path = ${join(folder, 'dovecot.log')}`,
    'ssl = no',
    'disable_plaintext_auth = no',
    `passdb {\n  driver = passwd-file\n  args = ${join(folder, 'passwd')}\n}`,
    `userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=${mailFolder}/%n\n}`,
    'mail_location = maildir:~/Maildir',
    `service imap-login {\n  inet_listener imap {\n    port = ${port}\n  }\n}`,
    '',
  ].join('\n');
  const configPath = join(folder, 'dovecot.conf');
  writeFileSync(configPath, config);
  execFileSync('/usr/sbin/dovecot', ['-c', configPath], { stdio: 'ignore' });

  // The master writes its pid file shortly after it has detached from this process.
  const pidFile = join(folder, 'run', 'master.pid');
  for (let attempt = 0; attempt < 100 && !existsSync(pidFile); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!existsSync(pidFile)) {
    const log = existsSync(join(folder, 'dovecot.log'))
      ? readFileSync(join(folder, 'dovecot.log'), 'utf8')
      : '(no log)';
    throw new Error(`Dovecot wrote no pid file in ${pidFile}; its log: ${log}`);
  }
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const stop = async () => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    for (let attempt = 0; attempt < 100 && isRunning(pid); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    rmSync(folder, { recursive: true, force: true });
  };
  try {
    await waitForPort(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, user, password, stop };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Wait until something accepts connections on the port, for at most about five seconds. */
async function waitForPort(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Dovecot did not listen on 127.0.0.1:${port}; read its log for the reason.`);
}
