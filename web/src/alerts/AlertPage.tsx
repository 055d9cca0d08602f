// The page that every HaloPSA ticket links to: one alert, the incident it belongs to with its
// ticket and notes, and the evidence that made it fire.
import { useEffect, useState } from 'react';
import type { CustomerView } from '../../../src/contract/platform.ts';
import { api, ApiError, messageOf } from '../api.ts';
import { Notice } from '../components/Notice.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { Progress } from '../components/Progress.tsx';
import { count, formatTime } from '../format.ts';
import type {
  AlertKind,
  AlertView,
  IncidentNoteView,
  IncidentResponse,
  IncidentView,
  TicketStatus,
} from './alert-view.ts';
import { Evidence, Facts } from './Evidence.tsx';

const KIND_NAMES: Record<AlertKind, string> = {
  threshold: 'Threshold',
  dns: 'DNS',
  forensic: 'Forensic',
};

const KIND_MEANINGS: Record<AlertKind, string> = {
  threshold: 'Too much mail failed DMARC in the aggregate reports.',
  dns: 'A DMARC, SPF or DKIM record in DNS changed, and a second lookup confirmed it.',
  forensic: 'A receiver sent a failure report about one message that failed DMARC.',
};

interface Loaded {
  alert: AlertView;
  /** Null when the alert has no incident. */
  incident: IncidentResponse | null;
  /** Null when the customer could not be read, for example without customers.read. */
  customer: CustomerView | null;
}

/** Load and show the alert with id `alertId`. */
export function AlertPage({ alertId }: { alertId: string }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [failure, setFailure] = useState<ApiError | Error | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    setLoaded(null);
    setFailure(null);
    (async () => {
      const alert = await api.get<AlertView>(`/alerts/${alertId}`, { signal });
      const incident = alert.incidentId
        ? await api.get<IncidentResponse>(`/incidents/${alert.incidentId}`, { signal })
        : null;
      const customer = await api
        .get<CustomerView>(`/customers/${alert.customerId}`, { signal })
        .catch((error: unknown) => {
          if (error instanceof ApiError) return null;
          throw error;
        });
      setLoaded({ alert, incident, customer });
    })().catch((error: unknown) => {
      if (signal.aborted) return;
      setFailure(error instanceof Error ? error : new Error(messageOf(error)));
    });
    return () => controller.abort();
  }, [alertId]);

  if (failure) {
    return (
      <>
        <PageHeading>Alert not shown</PageHeading>
        <Notice kind="error" title="The alert could not be loaded">
          <p>{failure.message}</p>
        </Notice>
      </>
    );
  }
  if (!loaded) return <Progress label="Loading the alert…" />;

  const { alert, incident, customer } = loaded;
  const subject = alert.groupId ? `domain group ${alert.domainName}` : alert.domainName;
  return (
    <>
      <PageHeading>
        {KIND_NAMES[alert.kind]} alert: {subject}
      </PageHeading>
      <p>{alert.summary}</p>
      <Facts
        rows={[
          ['Kind', `${KIND_NAMES[alert.kind]}. ${KIND_MEANINGS[alert.kind]}`],
          [alert.groupId ? 'Domain group' : 'Domain', alert.domainName],
          [
            'Customer',
            customer ? customer.name : `not readable with your role (id ${alert.customerId})`,
          ],
          ['Fired', formatTime(alert.createdAt)],
          ['HaloPSA', firingTicketText(alert)],
          ['Alert id', <code>{alert.id}</code>],
        ]}
      />
      <section aria-labelledby="incident-title">
        <h2 id="incident-title">Incident</h2>
        {incident ? (
          <IncidentDetails incident={incident.incident} notes={incident.notes} />
        ) : (
          <p>This alert belongs to no incident.</p>
        )}
      </section>
      <section aria-labelledby="evidence-title">
        <h2 id="evidence-title">Evidence</h2>
        <Evidence evidence={alert.evidence} />
      </section>
    </>
  );
}

function firingTicketText(alert: AlertView): string {
  const ticket = alert.halopsaTicketId;
  const texts: Record<TicketStatus, string> = {
    not_routed: 'No ticket rule covers this alert, so it made no HaloPSA ticket.',
    pending: 'A HaloPSA ticket or note for this alert is queued.',
    created: `This alert opened HaloPSA ticket ${ticket ?? '(number not recorded)'}.`,
    held: "This alert waits for the next note on its incident's ticket, because notes are spaced out.",
    noted: `A note on HaloPSA ticket ${ticket ?? '(number not recorded)'} covers this alert.`,
    failed: `The HaloPSA ticket or note failed: ${alert.ticketError ?? 'no reason was recorded'}.`,
  };
  return texts[alert.ticketStatus];
}

function incidentTicketText(incident: IncidentView): string {
  switch (incident.ticketStatus) {
    case 'created':
      return `Ticket ${incident.halopsaTicketId ?? '(number not recorded)'}`;
    case 'pending':
      return 'The ticket is being created.';
    case 'failed':
      return 'The ticket could not be created. The HaloPSA integration history shows why.';
    case 'not_routed':
      return 'No ticket, because no ticket rule covers this alert.';
  }
}

function IncidentDetails({
  incident,
  notes,
}: {
  incident: IncidentView;
  notes: IncidentNoteView[];
}) {
  const status =
    incident.status === 'open'
      ? 'Open'
      : `Resolved ${incident.resolvedAt ? formatTime(incident.resolvedAt) : ''}`.trim();
  return (
    <>
      <Facts
        rows={[
          ['Status', status],
          ['Resolution', incident.resolution],
          ['Opened', formatTime(incident.openedAt)],
          ['Last fired', formatTime(incident.lastFiredAt)],
          [
            'Firings',
            `${count(incident.firingCount, 'firing')}${incident.reopenCount > 0 ? `, reopened ${count(incident.reopenCount, 'time')}` : ''}`,
          ],
          ['HaloPSA ticket', incidentTicketText(incident)],
        ]}
      />
      <h3>Notes on the HaloPSA ticket</h3>
      {notes.length === 0 ? (
        <p>No note has been added to the ticket.</p>
      ) : (
        <table className="table table--compact">
          <caption className="visually-hidden">Notes on the HaloPSA ticket</caption>
          <thead>
            <tr>
              <th scope="col">Added</th>
              <th scope="col">Note</th>
              <th scope="col">Alerts covered</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {notes.map((note) => (
              <tr key={note.id}>
                <td>{formatTime(note.createdAt)}</td>
                <td>{note.kind === 'closing' ? 'Incident resolved' : 'Alert fired again'}</td>
                <td>{note.alertIds.length}</td>
                <td>
                  {note.status === 'sent'
                    ? `Added to ticket ${note.halopsaTicketId}${note.halopsaActionId === null ? '' : ` as action ${note.halopsaActionId}`}`
                    : `Failed: ${note.error ?? 'no reason was recorded'}`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
