// One mapped customer in step 3: a disclosure button, and when expanded the ticket settings
// (Ticket Type, Site, End User) and a table of alert rows with a select-all per alert kind.
import { memo, useEffect, useRef, useSyncExternalStore, type Ref } from 'react';
import type { CustomerMappingView } from '../../../src/contract/halopsa.ts';
import { FieldError } from '../components/Field.tsx';
import { Notice } from '../components/Notice.tsx';
import { Progress } from '../components/Progress.tsx';
import { count } from '../format.ts';
import { selectedRows, type AlertRules, type PanelState } from './alert-rules.ts';

interface Props {
  rules: AlertRules;
  mapping: CustomerMappingView;
  domainCount: number;
  /** Selected rows from the summary, for panels not loaded yet. */
  summaryRows: number | null;
  expanded: boolean;
  onToggle(customerId: string): void;
  measureRef: Ref<HTMLDivElement>;
  index: number;
}

function usePanel(rules: AlertRules, customerId: string): PanelState | undefined {
  return useSyncExternalStore(
    (listener) => rules.subscribe(customerId, listener),
    () => rules.get(customerId),
  );
}

const SAVE_TEXT: Record<PanelState['saveState'], string> = {
  idle: 'No ticket rule saved yet.',
  waiting: 'Changes not saved yet.',
  saving: 'Saving…',
  saved: 'Saved.',
  failed: 'Not saved.',
};

export const CustomerPanel = memo(function CustomerPanel(props: Props) {
  const { rules, mapping, expanded } = props;
  const customerId = mapping.customerId;
  const panel = usePanel(rules, customerId);
  // Ticket types are shared by every panel; a Resync of any panel may change them.
  useSyncExternalStore(
    (listener) => rules.subscribeAll(listener),
    () => rules.ticketTypes,
  );

  useEffect(() => {
    if (expanded) rules.ensureLoaded(customerId);
  }, [expanded, rules, customerId]);

  const toggleId = `panel-${customerId}-toggle`;
  const bodyId = `panel-${customerId}-body`;
  const rows = panel && panel.status === 'ready' ? selectedRows(panel.draft) : props.summaryRows;
  const unsaved = panel?.dirty || panel?.saveState === 'failed';

  return (
    <div ref={props.measureRef} data-index={props.index} className="panel">
      <h3 className="panel__heading">
        <button
          type="button"
          id={toggleId}
          className="panel__toggle"
          aria-expanded={expanded}
          aria-controls={expanded ? bodyId : undefined}
          onClick={() => props.onToggle(customerId)}
        >
          <span className="panel__chevron" aria-hidden="true" />
          <span className="panel__name">{mapping.customerName}</span>
          <span className="panel__meta">
            HaloPSA: {mapping.haloClientName} ·{' '}
            {count(panel?.status === 'ready' ? panel.domains.length : props.domainCount, 'domain')}
            {rows !== null ? ` · ${count(rows, 'alert row')} selected` : ''}
            {unsaved ? ' · not saved' : ''}
          </span>
        </button>
      </h3>
      {expanded ? (
        <div id={bodyId} role="region" aria-labelledby={toggleId} className="panel__body">
          {!panel || panel.status === 'loading' ? (
            <Progress label={`Loading the ticket rule of ${mapping.customerName}…`} />
          ) : panel.status === 'failed' ? (
            <Notice kind="error" title="This customer could not be loaded">
              <p>{panel.loadError}</p>
              <button type="button" className="button" onClick={() => rules.retryLoad(customerId)}>
                Try again
              </button>
            </Notice>
          ) : (
            <PanelBody rules={rules} mapping={mapping} panel={panel} />
          )}
        </div>
      ) : null}
    </div>
  );
});

function PanelBody({
  rules,
  mapping,
  panel,
}: {
  rules: AlertRules;
  mapping: CustomerMappingView;
  panel: PanelState;
}) {
  const customerId = mapping.customerId;
  const id = (part: string) => `panel-${customerId}-${part}`;
  const problems = rules.problemsOf(panel);
  const { draft } = panel;
  const fieldError = (field: 'ticketTypeId' | 'siteId' | 'userId') =>
    problems[field] ?? (panel.saveError?.field === field ? panel.saveError.message : null);
  const typeError =
    fieldError('ticketTypeId') ??
    (draft.ticketTypeId === null ? 'Choose the ticket type that tickets are raised as.' : null);
  const siteError = fieldError('siteId');
  const userError = fieldError('userId') ?? panel.usersError;
  const typeKnown = rules.ticketTypes.some((type) => type.id === draft.ticketTypeId);
  const siteKnown = panel.sites.some((site) => site.id === draft.siteId);
  const userKnown = panel.users?.some((user) => user.id === draft.userId) ?? false;

  // Every domain has a DNS, a threshold and a forensic row.
  const domainIds = panel.domains.map((domain) => domain.id);
  const groupIds = panel.groups.map((group) => group.id);
  const selected = {
    dns: new Set(draft.dns),
    thresholdDomains: new Set(draft.thresholdDomains),
    thresholdGroups: new Set(draft.thresholdGroups),
    forensic: new Set(draft.forensic),
  };
  const thresholdTotal = domainIds.length + groupIds.length;
  const thresholdChosen = draft.thresholdDomains.length + draft.thresholdGroups.length;
  const setThresholdAll = (on: boolean) => {
    rules.change(customerId, (current) => ({
      ...current,
      thresholdDomains: on ? [...domainIds] : [],
      thresholdGroups: on ? [...groupIds] : [],
    }));
  };

  return (
    <>
      <div className="panel__settings">
        <div className={`field ${typeError ? 'field--invalid' : ''}`}>
          <label htmlFor={id('type')} className="field__label">
            Ticket Type
          </label>
          <select
            id={id('type')}
            className="input"
            required
            aria-invalid={typeError ? true : undefined}
            aria-describedby={typeError ? `${id('type')}-error` : undefined}
            value={draft.ticketTypeId ?? ''}
            onChange={(event) =>
              rules.change(customerId, (current) => ({
                ...current,
                ticketTypeId: event.target.value ? Number(event.target.value) : null,
              }))
            }
          >
            {draft.ticketTypeId === null ? <option value="">Choose a ticket type</option> : null}
            {draft.ticketTypeId !== null && !typeKnown ? (
              <option value={draft.ticketTypeId}>
                {panel.saved?.ticketTypeName ?? `Type ${draft.ticketTypeId}`} (no longer in HaloPSA)
              </option>
            ) : null}
            {rules.ticketTypes.map((type) => (
              <option key={type.id} value={type.id}>
                {type.name}
              </option>
            ))}
          </select>
          {typeError ? <FieldError id={`${id('type')}-error`}>{typeError}</FieldError> : null}
        </div>

        <div className={`field ${siteError ? 'field--invalid' : ''}`}>
          <label htmlFor={id('site')} className="field__label">
            Site <span className="field__optional">(optional)</span>
          </label>
          <select
            id={id('site')}
            className="input"
            aria-invalid={siteError ? true : undefined}
            aria-describedby={siteError ? `${id('site')}-error` : undefined}
            value={draft.siteId ?? ''}
            onChange={(event) =>
              rules.chooseSite(customerId, event.target.value ? Number(event.target.value) : null)
            }
          >
            <option value="">None</option>
            {draft.siteId !== null && !siteKnown ? (
              <option value={draft.siteId}>
                {panel.saved?.siteName ?? `Site ${draft.siteId}`} (no longer in HaloPSA)
              </option>
            ) : null}
            {panel.sites.map((site) => (
              <option key={site.id} value={site.id}>
                {site.name}
              </option>
            ))}
          </select>
          {siteError ? <FieldError id={`${id('site')}-error`}>{siteError}</FieldError> : null}
        </div>

        <div className={`field ${userError ? 'field--invalid' : ''}`}>
          <label htmlFor={id('user')} className="field__label">
            End User <span className="field__optional">(optional)</span>
          </label>
          <select
            id={id('user')}
            className="input"
            disabled={draft.siteId === null || panel.users === null}
            aria-invalid={userError ? true : undefined}
            aria-describedby={userError ? `${id('user')}-error` : `${id('user')}-hint`}
            value={draft.userId ?? ''}
            onChange={(event) =>
              rules.change(customerId, (current) => ({
                ...current,
                userId: event.target.value ? Number(event.target.value) : null,
              }))
            }
          >
            <option value="">None</option>
            {draft.userId !== null && !userKnown ? (
              <option value={draft.userId}>
                {panel.saved?.userName ?? `User ${draft.userId}`}
                {panel.users ? ' (no longer at this site)' : ''}
              </option>
            ) : null}
            {(panel.users ?? []).map((user) => (
              <option key={user.id} value={user.id}>
                {user.name}
                {user.email ? ` (${user.email})` : ''}
              </option>
            ))}
          </select>
          {userError ? (
            <FieldError id={`${id('user')}-error`}>{userError}</FieldError>
          ) : (
            <p className="field__hint" id={`${id('user')}-hint`}>
              {draft.siteId === null
                ? 'Choose a Site first; the list shows the users of that site.'
                : panel.users === null
                  ? 'Loading the users of this site…'
                  : `${count(panel.users.length, 'user')} at this site.`}
            </p>
          )}
        </div>

        <div className="panel__actions">
          <button
            type="button"
            className="button"
            aria-label={`Resync ${mapping.customerName}`}
            onClick={() => void rules.resync(customerId)}
            disabled={panel.busy !== null}
          >
            Resync
          </button>
        </div>
      </div>

      {panel.busy ? <Progress label={panel.busy} /> : null}
      {panel.notes.length > 0 ? (
        <div className="panel__notes" role="status">
          {panel.notes.map((note) => (
            <p key={note}>{note}</p>
          ))}
        </div>
      ) : null}

      {panel.domains.length === 0 && panel.groups.length === 0 ? (
        <p>This customer account has no domains yet, so there are no alerts to map.</p>
      ) : (
        <table className="table alert-table">
          <caption className="visually-hidden">
            Alerts of {mapping.customerName} that raise a HaloPSA ticket
          </caption>
          <thead>
            <tr>
              <th scope="col">Domain or domain group</th>
              <SelectAllHeader
                label="DNS alerts"
                title={`All DNS alerts of ${mapping.customerName}`}
                total={domainIds.length}
                chosen={draft.dns.length}
                onChange={(on) => rules.setAll(customerId, 'dns', on ? domainIds : [])}
              />
              <SelectAllHeader
                label="Threshold alerts"
                title={`All threshold alerts of ${mapping.customerName}`}
                total={thresholdTotal}
                chosen={thresholdChosen}
                onChange={setThresholdAll}
              />
              <SelectAllHeader
                label="Forensic alerts"
                title={`All forensic alerts of ${mapping.customerName}`}
                total={domainIds.length}
                chosen={draft.forensic.length}
                onChange={(on) => rules.setAll(customerId, 'forensic', on ? domainIds : [])}
              />
            </tr>
          </thead>
          <tbody>
            {panel.domains.map((domain) => (
              <tr key={domain.id}>
                <th scope="row">
                  {domain.name}
                  {domain.status !== 'active' ? <span className="tag">{domain.status}</span> : null}
                </th>
                {(['dns', 'thresholdDomains', 'forensic'] as const).map((list) => (
                  <td key={list} className="alert-table__check">
                    <input
                      type="checkbox"
                      aria-label={`${LIST_LABELS[list]} for ${domain.name}`}
                      checked={selected[list].has(domain.id)}
                      onChange={(event) =>
                        rules.toggle(customerId, list, domain.id, event.target.checked)
                      }
                    />
                  </td>
                ))}
              </tr>
            ))}
            {panel.groups.map((group) => (
              <tr key={group.id}>
                <th scope="row">
                  {group.name}{' '}
                  <span className="tag">group of {count(group.domainIds.length, 'domain')}</span>
                </th>
                <td className="alert-table__none">
                  <span className="visually-hidden">No DNS alerts for groups</span>
                </td>
                <td className="alert-table__check">
                  <input
                    type="checkbox"
                    aria-label={`Threshold alerts for group ${group.name}`}
                    checked={selected.thresholdGroups.has(group.id)}
                    onChange={(event) =>
                      rules.toggle(customerId, 'thresholdGroups', group.id, event.target.checked)
                    }
                  />
                </td>
                <td className="alert-table__none">
                  <span className="visually-hidden">No forensic alerts for groups</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <SaveLine rules={rules} panel={panel} customerName={mapping.customerName} />
    </>
  );
}

const LIST_LABELS: Record<'dns' | 'thresholdDomains' | 'forensic', string> = {
  dns: 'DNS alerts',
  thresholdDomains: 'Threshold alerts',
  forensic: 'Forensic alerts',
};

function SelectAllHeader(props: {
  label: string;
  title: string;
  total: number;
  chosen: number;
  onChange(on: boolean): void;
}) {
  const ref = useRef<HTMLInputElement>(null);
  const all = props.total > 0 && props.chosen === props.total;
  useEffect(() => {
    if (ref.current) ref.current.indeterminate = props.chosen > 0 && !all;
  }, [props.chosen, all]);
  return (
    <th scope="col" className="alert-table__kind">
      <label className="select-all">
        <input
          ref={ref}
          type="checkbox"
          aria-label={props.title}
          checked={all}
          disabled={props.total === 0}
          onChange={(event) => props.onChange(event.target.checked)}
        />
        <span>{props.label}</span>
      </label>
    </th>
  );
}

function SaveLine({
  rules,
  panel,
  customerName,
}: {
  rules: AlertRules;
  panel: PanelState;
  customerName: string;
}) {
  const generalError =
    panel.saveError && panel.saveError.field === null ? panel.saveError.message : null;
  const blocker = panel.saveState === 'failed' && !panel.saveError ? rules.blockerOf(panel) : null;
  return (
    <div className="panel__save">
      <p className={`save-state ${panel.saveState === 'failed' ? 'save-state--error' : ''}`}>
        {panel.saveState === 'saving' ? <span className="spinner" aria-hidden="true" /> : null}
        {SAVE_TEXT[panel.saveState]}
        {blocker ? ` ${blocker}` : ''}
      </p>
      {generalError ? (
        <Notice kind="error" title={`The ticket rule of ${customerName} was not saved`}>
          <p>{generalError}</p>
        </Notice>
      ) : null}
    </div>
  );
}
