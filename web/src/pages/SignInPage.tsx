import { useRef, useState, type FormEvent } from 'react';
import { messageOf } from '../api.ts';
import { Notice } from '../components/Notice.tsx';
import { TextField } from '../components/Field.tsx';
import { useSession } from '../session.tsx';

/** Render the sign-in form, with the server's reason when sign-in fails. */
export function SignInPage({ notice }: { notice: string | null }) {
  const { signIn } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<{ email?: string; password?: string }>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const emailRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const missing: typeof errors = {};
    if (!email.trim()) missing.email = 'Enter the email address you sign in with.';
    if (!password) missing.password = 'Enter your password.';
    setErrors(missing);
    setFailure(null);
    if (missing.email) return emailRef.current?.focus();
    if (missing.password) return passwordRef.current?.focus();

    setBusy(true);
    try {
      await signIn({ email: email.trim(), password });
    } catch (error) {
      setFailure(messageOf(error));
      passwordRef.current?.select();
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="page page--centred" id="main">
      <div className="card sign-in">
        <h1 className="page__title">Sign in to dmarcdesk</h1>
        {notice ? <Notice kind="info">{notice}</Notice> : null}
        {failure ? <Notice kind="error">{failure}</Notice> : null}
        <form onSubmit={submit} noValidate>
          <TextField
            id="sign-in-email"
            label="Email address"
            type="email"
            autoComplete="username"
            required
            value={email}
            error={errors.email}
            inputRef={emailRef}
            onChange={(event) => setEmail(event.target.value)}
          />
          <TextField
            id="sign-in-password"
            label="Password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            error={errors.password}
            inputRef={passwordRef}
            onChange={(event) => setPassword(event.target.value)}
          />
          <button type="submit" className="button button--primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}
