// A root worker's file work for a job of another user — creating its staging
// folders, moving its outputs into place, removing its staging — done with
// that user's rights, in a short process switched to it as the job is
// (bin/gantry-launcher --job: groups, gid, uid). Root following a path the job
// controls would be a confused deputy: a staging folder swapped for a symbolic
// link had root move a root-only file into the tool's folder; a folder swapped
// between root's mkdir and chown would have been chowned to the tool. As the
// user, an operation can reach only what the user could reach itself.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { LAUNCHER_SCRIPT, unescapeField } from './launcher.js';
import { boundsFields, type RunAs } from './jobBounds.js';

// prepare DIR... | commit (STAGED FINAL ASIDE)... | discard PATH...
// Errors name the path and the system's reason, on stderr, exit 1.
const SCRIPT = String.raw`
use strict; use File::Path qw(make_path remove_tree); use File::Basename qw(dirname);
my $op = shift;
sub mk { my $d = shift; make_path($d, { error => \my $err }); die "cannot create $d: " . join('; ', map { values %$_ } @$err) . "\n" if @$err || !-d $d; }
sub rmtree { my $p = shift; return unless -e $p || -l $p; remove_tree($p, { error => \my $err }); die "cannot remove $p: " . join('; ', map { values %$_ } @$err) . "\n" if @$err; }
if ($op eq 'prepare') { mk($_) for @ARGV }
elsif ($op eq 'commit') {
  while (@ARGV) {
    my ($staged, $final, $aside) = splice(@ARGV, 0, 3);
    mk(dirname($final));
    if (-d $final && !-l $final) {
      rename($final, $aside) or die "cannot move $final aside: $!\n";
      rename($staged, $final) or die "cannot move $staged to $final: $!\n";
      rmtree($aside);
    } else { rename($staged, $final) or die "cannot move $staged to $final: $!\n" }
  }
}
elsif ($op eq 'discard') { rmtree($_) for @ARGV }
else { die "unknown operation $op\n" }
`;

/** `as` when file work for it must be done in a process of its own (it is not who this process is), else null. */
export function switchTo(as: RunAs | null | undefined): RunAs | null {
  return as && typeof process.getuid === 'function' && as.uid !== process.getuid() ? as : null;
}

/** Runs one operation as `as`; rejects with the operation's own error (the path and the reason). */
export function fileOpAsUser(as: RunAs, op: 'prepare' | 'commit' | 'discard', args: string[]): Promise<void> {
  const fields = boundsFields(as, null);
  if ('error' in fields) return Promise.reject(new Error(fields.error));
  return new Promise((resolve, reject) => {
    // A minimal environment: this process runs as the job's user, who may read its /proc/PID/environ.
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };
    const child = spawn('perl', [LAUNCHER_SCRIPT, '--job', '', fields.runAs, '', '/', '0', 'perl', '-e', SCRIPT, op, ...args], {
      cwd: '/',
      env,
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let report = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr.length < 4096 ? (stderr += s) : undefined));
    (child.stdio[3] as Readable).setEncoding('utf8').on('data', (s: string) => (report += s));
    child.on('error', (e) => reject(new Error(`cannot run perl as uid ${as.uid}: ${e.message}`)));
    child.on('close', () => {
      const lines = report.split('\n');
      const failed = lines.find((l) => l.startsWith('failed\t'));
      const exit = lines.find((l) => l.startsWith('exit\t'))?.split('\t');
      if (failed) return reject(new Error(unescapeField(failed.slice('failed\t'.length))));
      if (exit && exit[1] === '0') return resolve();
      reject(new Error(stderr.trim() || `${op} as uid ${as.uid} ended with ${exit ? `code ${exit[1] || '-'} signal ${exit[2] || '-'}` : 'no report'}`));
    });
  });
}
