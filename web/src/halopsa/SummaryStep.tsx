// The summary: the notice after a submit, then one card each for the connection, the mapped
// customers and the alerts that raise tickets, and the open problems of mappings under them.
// Each card links to the step that changes it.
import { useEffect, useMemo, useState } from 'react';
import type { AlertKind, MappingsResponse } from '../../../src/contract/halopsa.ts';
import { api, messageOf } from '../api.ts';
import { Notice } from '../components/Notice.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { count, formatNumber, formatTime } from '../format.ts';
import { Link, useLocation } from '../router.tsx';
import { stepPath, useWizard } from './Wizard.tsx';

const KIND_NAMES: Record<AlertKind, string> = {
  dns: 'DNS',
  threshold: 'Threshold',
  forensic: 'Forensic',
};

const POLL_INTERVAL_MS = 1500;
/** Polling stops after this many rounds (about a minute); the page can be reloaded after. */
const POLL_ROUNDS = 40;

export function SummaryStep() {
  const { summary, reloadSummary } = useWizard();
  const { state } = useLocation();
  const submitted = (state as { submitted?: number } | null)?.submitted;
  const [mappings, setMappings] = useState<MappingsResponse | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const { connection, customers, alerts } = summary;

  useEffect(() => {
    api
      .get<MappingsResponse>('/integrations/halopsa/mappings')
      .then(setMappings)
      .catch((error: unknown) => setFailure(messageOf(error)));
  }, [customers.synced, customers.failed]);

  // Subscriptions are written by background jobs; follow them until none is pending.
  const pending = customers.pending > 0;
  useEffect(() => {
    if (!pending) return;
    let rounds = 0;
    const timer = window.setInterval(() => {
      rounds += 1;
      if (rounds >= POLL_ROUNDS) window.clearInterval(timer);
      reloadSummary().catch(() => window.clearInterval(timer));
    }, POLL_INTERVAL_MS);
    return () => window.clearInterval(timer);
  }, [pending, reloadSummary]);

  const names = useMemo(
    () => new Map((mappings?.mappings ?? []).map((m) => [m.customerId, m.customerName])),
    [mappings],
  );
  const failedMappings = (mappings?.mappings ?? []).filter((mapping) => mapping.syncError);
  const kinds = (['dns', 'threshold', 'forensic'] as const).map((kind) => {
    const rows = alerts.perCustomer.filter((row) => row[kind] > 0);
    return {
      kind,
      customers: rows.length,
      rows: rows.reduce((sum, row) => sum + row[kind], 0),
    };
  });
  const rules = alerts.perCustomer
    .filter((row) => row.dns + row.threshold + row.forensic > 0)
    .sort((a, b) => (names.get(a.customerId) ?? '').localeCompare(names.get(b.customerId) ?? ''));

  return (
    <section aria-labelledby="step-title">
      <PageHeading>
        <span id="step-title">HaloPSA integration summary</span>
      </PageHeading>
      {submitted !== undefined ? (
        <Notice kind="success" title="The configuration was submitted to HaloPSA">
          <p>
            {submitted === 0
              ? 'No customer is mapped, so no subscription was queued.'
              : `${count(submitted, 'subscription')} ${submitted === 1 ? 'is' : 'are'} being created or updated in HaloPSA. The Customers card shows when they are up to date.`}
          </p>
        </Notice>
      ) : null}
      {failure ? <Notice kind="error">{failure}</Notice> : null}

      <ul className="status-cards">
        <li className="card status-card">
          <h2 className="card__title" id="card-connection">
            Connection
          </h2>
          {connection ? (
            <>
              <p className="status-card__value">{connection.url}</p>
              <p>
                <span
                  className={`badge badge--${connection.status === 'healthy' ? 'ok' : 'error'}`}
                >
                  {connection.status === 'healthy' ? 'Healthy' : 'Needs attention'}
                </span>
              </p>
              {connection.statusDetail ? <p>{connection.statusDetail}</p> : null}
              <p className="status-card__note">
                Client ID {connection.clientId}. Last checked {formatTime(connection.lastCheckedAt)}
                .
              </p>
            </>
          ) : (
            <p>Not connected.</p>
          )}
          <Link to={stepPath('connection')} className="status-card__link">
            Open step 1: Connection
          </Link>
        </li>

        <li className="card status-card">
          <h2 className="card__title" id="card-customers">
            Customers
          </h2>
          <p className="status-card__value">
            <span data-testid="mapped-count">{formatNumber(customers.mapped)}</span> mapped
          </p>
          <p>
            Subscriptions: {formatNumber(customers.synced)} up to date,{' '}
            {formatNumber(customers.pending)} pending, {formatNumber(customers.failed)} failed.
          </p>
          {failedMappings.length > 0 ? (
            <ul className="status-card__problems">
              {failedMappings.slice(0, 5).map((mapping) => (
                <li key={mapping.customerId}>
                  {mapping.customerName}: {mapping.syncError}
                </li>
              ))}
            </ul>
          ) : null}
          <Link to={stepPath('customers')} className="status-card__link">
            Open step 2: Map customers and items
          </Link>
        </li>

        <li className="card status-card">
          <h2 className="card__title" id="card-alerts">
            Alerts
          </h2>
          <p className="status-card__value">
            {alerts.enabledKinds.length === 0
              ? 'No alert kind raises tickets yet'
              : `${alerts.enabledKinds.map((kind) => KIND_NAMES[kind]).join(', ')} alerts raise tickets`}
          </p>
          <ul className="status-card__kinds">
            {kinds.map((entry) => (
              <li key={entry.kind} data-kind={entry.kind}>
                {KIND_NAMES[entry.kind]}: {count(entry.customers, 'customer')}
                {entry.rows > 0 ? `, ${count(entry.rows, 'alert row')}` : ''}
              </li>
            ))}
          </ul>
          {rules.length > 0 ? (
            <details>
              <summary>Per customer</summary>
              <table className="table table--compact">
                <caption className="visually-hidden">Selected alert rows per customer</caption>
                <thead>
                  <tr>
                    <th scope="col">Customer</th>
                    <th scope="col">DNS</th>
                    <th scope="col">Threshold</th>
                    <th scope="col">Forensic</th>
                  </tr>
                </thead>
                <tbody>
                  {rules.slice(0, 50).map((row) => (
                    <tr key={row.customerId}>
                      <th scope="row">{names.get(row.customerId) ?? row.customerId}</th>
                      <td>{row.dns}</td>
                      <td>{row.threshold}</td>
                      <td>{row.forensic}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {rules.length > 50 ? (
                <p>and {count(rules.length - 50, 'more customer')}; step 3 shows them all.</p>
              ) : null}
            </details>
          ) : null}
          <Link to={stepPath('alerts')} className="status-card__link">
            Open step 3: Map alerts to tickets
          </Link>
        </li>
      </ul>

      {summary.problems.length > 0 ? (
        <section className="card problems" aria-labelledby="problems-title">
          <h2 className="card__title" id="problems-title">
            Problems to fix ({formatNumber(summary.problems.length)})
          </h2>
          <p>
            These mappings name HaloPSA records that are gone or changed. Tickets of the customers
            concerned wait until the next check finds the problem fixed.
          </p>
          <ul className="problems__list">
            {summary.problems.map((problem) => (
              <li key={problem.id} data-kind={problem.kind}>
                <strong>{problem.customerName}</strong>: {problem.action}{' '}
                <span className="status-card__note">Found {formatTime(problem.openedAt)}.</span>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </section>
  );
}
