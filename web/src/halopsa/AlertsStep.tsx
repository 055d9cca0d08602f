// Step 3: a collapsed panel per mapped customer, found by customer name or domain, and
// "Submit to HaloPSA". The panels are virtualised against the page's own scrolling, so only
// the ones on screen are in the DOM, however many customers are mapped.
import { useWindowVirtualizer } from '@tanstack/react-virtual';
import {
  useCallback,
  useDeferredValue,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from 'react';
import type {
  CustomerMappingView,
  MappingsResponse,
  SubmitResponse,
  TicketTypesResponse,
} from '../../../src/contract/halopsa.ts';
import type { DomainsResponse, DomainView } from '../../../src/contract/platform.ts';
import { api, messageOf } from '../api.ts';
import { Notice } from '../components/Notice.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { Progress } from '../components/Progress.tsx';
import { count, formatNumber } from '../format.ts';
import { navigate, useLeaveGuard } from '../router.tsx';
import { AlertRules } from './alert-rules.ts';
import { CustomerPanel } from './CustomerPanel.tsx';
import { stepPath, useWizard } from './Wizard.tsx';

interface Loaded {
  rules: AlertRules;
  mappings: CustomerMappingView[];
  domainsByCustomer: Map<string, DomainView[]>;
  /** Lower-case customer name and domain names per customer, for the search. */
  searchText: Map<string, string[]>;
}

// NOTE: the page loads every domain of the account at once, for the search by domain. That is
// 329 ms for 7,500 domains (docs/benchmarks.md); far larger accounts would need the search on
// the server and the domains loaded per panel.
async function loadStep(): Promise<Loaded> {
  const [mappings, domains, ticketTypes] = await Promise.all([
    api.get<MappingsResponse>('/integrations/halopsa/mappings'),
    api.get<DomainsResponse>('/domains'),
    api.get<TicketTypesResponse>('/integrations/halopsa/ticket-types'),
  ]);
  const domainsByCustomer = new Map<string, DomainView[]>();
  for (const domain of domains.domains) {
    const list = domainsByCustomer.get(domain.customerId);
    if (list) list.push(domain);
    else domainsByCustomer.set(domain.customerId, [domain]);
  }
  const byId = new Map(mappings.mappings.map((mapping) => [mapping.customerId, mapping]));
  const searchText = new Map(
    mappings.mappings.map((mapping) => [
      mapping.customerId,
      [
        mapping.customerName.toLowerCase(),
        ...(domainsByCustomer.get(mapping.customerId) ?? []).map((domain) =>
          domain.name.toLowerCase(),
        ),
      ],
    ]),
  );
  return {
    rules: new AlertRules(ticketTypes, byId, domainsByCustomer),
    mappings: mappings.mappings,
    domainsByCustomer,
    searchText,
  };
}

export function AlertsStep() {
  const { summary, reloadSummary } = useWizard();
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [loadFailure, setLoadFailure] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const deferredQuery = useDeferredValue(query);
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const [submitting, setSubmitting] = useState<string | null>(null);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const listRef = useRef<HTMLDivElement>(null);
  const [scrollMargin, setScrollMargin] = useState(0);

  const load = useCallback(async () => {
    setLoadFailure(null);
    try {
      setLoaded(await loadStep());
    } catch (error) {
      setLoadFailure(messageOf(error));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => () => loaded?.rules.dispose(), [loaded]);

  const rules = loaded?.rules ?? null;
  useSyncExternalStore(
    (listener) => (rules ? rules.subscribeAll(listener) : () => undefined),
    () => rules?.getVersion() ?? 0,
  );
  const unsaved = rules?.unsavedCustomers().length ?? 0;
  useLeaveGuard(
    unsaved > 0 && submitting === null
      ? `The ticket rules of ${count(unsaved, 'customer')} are not saved yet.`
      : null,
  );

  const summaryRows = useMemo(
    () =>
      new Map(
        summary.alerts.perCustomer.map((row) => [
          row.customerId,
          row.dns + row.threshold + row.forensic,
        ]),
      ),
    [summary],
  );

  // A substring test over the names of 5,000 customers and their domains takes a few
  // milliseconds, so the search runs in the browser on every keystroke.
  const visible = useMemo(() => {
    if (!loaded) return [];
    const needle = deferredQuery.trim().toLowerCase();
    if (!needle) return loaded.mappings;
    return loaded.mappings.filter((mapping) =>
      loaded.searchText.get(mapping.customerId)!.some((text) => text.includes(needle)),
    );
  }, [loaded, deferredQuery]);

  useLayoutEffect(() => {
    if (listRef.current) {
      setScrollMargin(listRef.current.getBoundingClientRect().top + window.scrollY);
    }
  }, [loaded]);

  const virtualizer = useWindowVirtualizer({
    count: visible.length,
    estimateSize: () => 64,
    overscan: 6,
    scrollMargin,
    getItemKey: (index) => visible[index]!.customerId,
  });

  const toggle = useCallback((customerId: string) => {
    setExpanded((current) => {
      const next = new Set(current);
      if (next.has(customerId)) next.delete(customerId);
      else next.add(customerId);
      return next;
    });
  }, []);

  const submit = async () => {
    if (!rules || submitting) return;
    setSubmitError(null);
    setSubmitting('Saving the ticket rules…');
    try {
      const failed = await rules.saveAll();
      if (failed.length > 0) {
        const names = failed
          .map((id) => loaded!.mappings.find((mapping) => mapping.customerId === id)?.customerName)
          .filter(Boolean);
        setExpanded((current) => new Set([...current, ...failed]));
        setSubmitError(
          `Nothing was submitted: the ticket ${failed.length === 1 ? 'rule' : 'rules'} of ${names.join(', ')} could not be saved. The reasons are shown in ${failed.length === 1 ? 'its panel' : 'their panels'}.`,
        );
        return;
      }
      setSubmitting('Submitting to HaloPSA…');
      const response = await api.post<SubmitResponse>('/integrations/halopsa/submit');
      await reloadSummary();
      navigate(stepPath('summary'), { force: true, state: { submitted: response.queued } });
    } catch (error) {
      setSubmitError(`Nothing was submitted: ${messageOf(error)}`);
    } finally {
      setSubmitting(null);
    }
  };

  const heading = (
    <PageHeading>
      <span id="step-title">Step 3 of 3: Map alerts to tickets</span>
    </PageHeading>
  );

  if (loadFailure) {
    return (
      <section aria-labelledby="step-title">
        {heading}
        <Notice kind="error" title="The ticket rules could not be loaded">
          <p>{loadFailure}</p>
          <button type="button" className="button" onClick={() => void load()}>
            Try again
          </button>
        </Notice>
      </section>
    );
  }

  const allExpanded = visible.length > 0 && visible.every((m) => expanded.has(m.customerId));

  return (
    <section aria-labelledby="step-title">
      {heading}
      <p>
        Choose, per customer, how tickets are filed and which alerts raise one. Each change is saved
        shortly after you make it; “Submit to HaloPSA” saves what is left and brings the
        subscriptions up to date.
      </p>
      {!loaded || !rules ? (
        <Progress label="Loading mapped customers, their domains, and ticket types from HaloPSA…" />
      ) : (
        <>
          <div className="toolbar">
            <div className="toolbar__group">
              <label className="inline-field inline-field--wide">
                <span>Search customers</span>
                <input
                  className="input"
                  type="search"
                  value={query}
                  placeholder="Customer name or domain"
                  aria-describedby="alerts-search-count"
                  onChange={(event) => setQuery(event.target.value)}
                />
              </label>
              <p id="alerts-search-count" className="status-line" role="status">
                {visible.length === loaded.mappings.length
                  ? count(loaded.mappings.length, 'mapped customer')
                  : `${formatNumber(visible.length)} of ${count(loaded.mappings.length, 'mapped customer')}`}
              </p>
            </div>
            <div className="toolbar__group">
              <button
                type="button"
                className="button"
                disabled={visible.length === 0 || allExpanded}
                onClick={() =>
                  setExpanded(
                    (current) => new Set([...current, ...visible.map((m) => m.customerId)]),
                  )
                }
              >
                Expand All
              </button>
              <button
                type="button"
                className="button"
                disabled={expanded.size === 0}
                onClick={() => setExpanded(new Set())}
              >
                Collapse All
              </button>
            </div>
          </div>

          <div ref={listRef} className="panel-list">
            {visible.length === 0 ? (
              <p className="table__empty">
                {loaded.mappings.length === 0
                  ? 'No customer is mapped yet; map customers in step 2 first.'
                  : `No mapped customer has a name or domain containing “${deferredQuery.trim()}”.`}
              </p>
            ) : (
              <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
                {virtualizer.getVirtualItems().map((item) => {
                  const mapping = visible[item.index]!;
                  return (
                    <div
                      key={item.key}
                      className="panel-list__item"
                      style={{ transform: `translateY(${item.start - scrollMargin}px)` }}
                    >
                      <CustomerPanel
                        rules={rules}
                        mapping={mapping}
                        index={item.index}
                        measureRef={virtualizer.measureElement}
                        domainCount={loaded.domainsByCustomer.get(mapping.customerId)?.length ?? 0}
                        summaryRows={summaryRows.get(mapping.customerId) ?? null}
                        expanded={expanded.has(mapping.customerId)}
                        onToggle={toggle}
                      />
                    </div>
                  );
                })}
              </div>
            )}
          </div>

          {submitError ? <Notice kind="error">{submitError}</Notice> : null}
          <div className="form__actions">
            <button
              type="button"
              className="button button--primary"
              aria-disabled={submitting !== null}
              onClick={() => void submit()}
            >
              Submit to HaloPSA
            </button>
            {submitting ? <Progress label={submitting} /> : null}
            {unsaved > 0 && !submitting ? (
              <span className="status-line">
                {count(unsaved, 'customer')} with changes not saved yet.
              </span>
            ) : null}
          </div>
        </>
      )}
    </section>
  );
}
