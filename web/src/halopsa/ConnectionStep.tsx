// Step 1: the HaloPSA URL, client ID and client secret. "Connect & Continue" lets the server
// obtain a token and read from HaloPSA before anything is saved. The stored secret never comes
// back from the server, so its field always starts empty.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type {
  ConnectionResponse,
  ConnectRequest,
  HaloConnectionView,
} from '../../../src/contract/halopsa.ts';
import { api, ApiError, fieldMessage, messageOf } from '../api.ts';
import { TextField } from '../components/Field.tsx';
import { Notice } from '../components/Notice.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { Progress } from '../components/Progress.tsx';
import { formatTime } from '../format.ts';
import { navigate, useLeaveGuard } from '../router.tsx';
import { stepPath, useWizard } from './Wizard.tsx';

type FieldName = 'url' | 'clientId' | 'clientSecret' | 'tenant';

const LABELS: Record<FieldName, string> = {
  url: 'HaloPSA URL',
  clientId: 'Client ID',
  clientSecret: 'Client secret',
  tenant: 'Tenant',
};

const FIELD_IDS: Record<FieldName, string> = {
  url: 'halopsa-url',
  clientId: 'halopsa-client-id',
  clientSecret: 'halopsa-client-secret',
  tenant: 'halopsa-tenant',
};

/** Strip the spaces around a pasted URL and keep the rest exactly as typed. */
const normaliseUrl = (value: string) => value.trim();

export function ConnectionStep() {
  const { reloadSummary } = useWizard();
  const [stored, setStored] = useState<HaloConnectionView | null | undefined>(undefined);
  const [values, setValues] = useState<Record<FieldName, string>>({
    url: '',
    clientId: '',
    clientSecret: '',
    tenant: '',
  });
  const [errors, setErrors] = useState<Partial<Record<FieldName, string>>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [loadFailure, setLoadFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const inputs = useRef<Partial<Record<FieldName, HTMLInputElement | null>>>({});

  useEffect(() => {
    const controller = new AbortController();
    api
      .get<ConnectionResponse>('/integrations/halopsa/connection', { signal: controller.signal })
      .then(({ connection }) => {
        setStored(connection);
        if (connection) {
          setValues({
            url: connection.url,
            clientId: connection.clientId,
            clientSecret: '',
            tenant: connection.tenant ?? '',
          });
        }
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setLoadFailure(messageOf(error));
      });
    return () => controller.abort();
  }, []);

  // A new URL or client ID needs the secret again, so that a stored secret never follows a
  // different host.
  const secretReusable =
    !!stored &&
    normaliseUrl(values.url).replace(/\/+$/, '') === stored.url &&
    values.clientId.trim() === stored.clientId;

  const dirty =
    stored !== undefined &&
    (values.clientSecret !== '' ||
      normaliseUrl(values.url) !== (stored?.url ?? '') ||
      values.clientId.trim() !== (stored?.clientId ?? '') ||
      values.tenant.trim() !== (stored?.tenant ?? ''));
  useLeaveGuard(dirty ? 'The connection details you entered are not saved yet.' : null);

  const set = (field: FieldName) => (event: { target: { value: string } }) => {
    setValues((current) => ({ ...current, [field]: event.target.value }));
    setErrors((current) => ({ ...current, [field]: undefined }));
  };

  const localErrors = (): Partial<Record<FieldName, string>> => {
    const found: Partial<Record<FieldName, string>> = {};
    if (!normaliseUrl(values.url)) {
      found.url = 'Enter the address of your HaloPSA, for example https://yourcompany.halopsa.com.';
    }
    if (!values.clientId.trim()) {
      found.clientId = 'Enter the client ID that HaloPSA showed for the API application.';
    }
    if (!values.clientSecret && !secretReusable) {
      found.clientSecret = stored
        ? 'Enter the client secret again: it is needed whenever the URL or the client ID changes.'
        : 'Enter the client secret that HaloPSA showed for the API application.';
    }
    return found;
  };

  const focusFirst = (found: Partial<Record<FieldName, string>>) => {
    const first = (Object.keys(LABELS) as FieldName[]).find((field) => found[field]);
    if (first) inputs.current[first]?.focus();
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setFailure(null);
    const found = localErrors();
    setErrors(found);
    if (Object.keys(found).length > 0) return focusFirst(found);

    const body: ConnectRequest = {
      url: normaliseUrl(values.url),
      clientId: values.clientId.trim(),
      ...(values.clientSecret ? { clientSecret: values.clientSecret } : {}),
      ...(values.tenant.trim() ? { tenant: values.tenant.trim() } : {}),
    };
    const controller = new AbortController();
    abort.current = controller;
    setBusy(true);
    try {
      const { connection } = await api.put<ConnectionResponse>(
        '/integrations/halopsa/connection',
        body,
        { signal: controller.signal },
      );
      setStored(connection);
      setValues((current) => ({ ...current, clientSecret: '' }));
      await reloadSummary();
      // Everything typed is saved now, so the leave guard has nothing to warn about.
      navigate(stepPath('customers'), { force: true });
    } catch (error) {
      if (controller.signal.aborted) {
        setFailure('The connection check was cancelled. Nothing was saved.');
        return;
      }
      const field = error instanceof ApiError ? (error.field as FieldName | undefined) : undefined;
      if (field && field in LABELS) {
        const found = { [field]: fieldMessage(LABELS[field], messageOf(error)) };
        setErrors(found);
        focusFirst(found);
      } else {
        setFailure(messageOf(error));
      }
    } finally {
      abort.current = null;
      setBusy(false);
    }
  };

  const fieldProps = (field: FieldName) => ({
    id: FIELD_IDS[field],
    label: LABELS[field],
    value: values[field],
    error: errors[field],
    onChange: set(field),
    readOnly: busy,
    inputRef: (element: HTMLInputElement | null) => {
      inputs.current[field] = element;
    },
  });

  return (
    <section aria-labelledby="step-title">
      <PageHeading>
        <span id="step-title">Step 1 of 3: Connection</span>
      </PageHeading>
      <p>
        Enter the address of your HaloPSA and the client ID and secret of its API application
        (authentication method “Client ID and Secret (Services)”). dmarcdesk obtains a token and
        reads from HaloPSA before it saves anything.
      </p>
      {loadFailure ? <Notice kind="error">{loadFailure}</Notice> : null}
      {stored ? (
        <Notice
          kind={stored.status === 'healthy' ? 'success' : 'warning'}
          title={
            stored.status === 'healthy'
              ? `Connected to ${stored.url}`
              : `The connection to ${stored.url} needs attention`
          }
        >
          {stored.statusDetail ? <p>{stored.statusDetail}</p> : null}
          <p>Last checked {formatTime(stored.lastCheckedAt)}.</p>
        </Notice>
      ) : null}
      {failure ? (
        <Notice kind="error" title="The connection was not saved">
          <p>{failure}</p>
        </Notice>
      ) : null}
      <form onSubmit={submit} noValidate className="form" aria-busy={busy}>
        <TextField
          {...fieldProps('url')}
          type="url"
          inputMode="url"
          autoComplete="url"
          required
          placeholder="https://yourcompany.halopsa.com"
          hint="The address you open HaloPSA at."
        />
        <TextField {...fieldProps('clientId')} autoComplete="off" spellCheck={false} required />
        <TextField
          {...fieldProps('clientSecret')}
          type="password"
          autoComplete="new-password"
          required={!secretReusable}
          hint={
            secretReusable
              ? 'A secret is stored. Leave this empty to keep it, or enter a new one.'
              : 'HaloPSA shows it once, when the API application is created.'
          }
        />
        <details className="form__advanced" open={values.tenant !== '' || undefined}>
          <summary>Advanced</summary>
          <TextField
            {...fieldProps('tenant')}
            autoComplete="off"
            hint="Only for a HaloPSA that signs in through a shared authorisation server."
          />
        </details>
        <div className="form__actions">
          <button type="submit" className="button button--primary" aria-disabled={busy}>
            Connect &amp; Continue
          </button>
          {busy ? (
            <>
              <button type="button" className="button" onClick={() => abort.current?.abort()}>
                Cancel
              </button>
              <Progress label="Checking the connection: requesting a token, then reading from HaloPSA…" />
            </>
          ) : null}
        </div>
      </form>
    </section>
  );
}
