// The HaloPSA wizard: three steps and the summary, each at its own path under
// /integrations/halopsa. They share the integration summary, which decides the open steps.
import { createContext, useCallback, useContext, useEffect, useState } from 'react';
import type { IntegrationSummaryView } from '../../../src/contract/halopsa.ts';
import { api, ApiError, messageOf } from '../api.ts';
import { Notice } from '../components/Notice.tsx';
import { Progress } from '../components/Progress.tsx';
import { NoAccess } from '../pages/NoAccess.tsx';
import { NotFoundPage } from '../pages/NotFoundPage.tsx';
import { Link, navigate, useLocation } from '../router.tsx';
import { useSignedIn } from '../session.tsx';
import { AlertsStep } from './AlertsStep.tsx';
import { ConnectionStep } from './ConnectionStep.tsx';
import { MappingStep } from './MappingStep.tsx';
import { SummaryStep } from './SummaryStep.tsx';

export const WIZARD_PATH = '/integrations/halopsa';

export type StepKey = 'connection' | 'customers' | 'alerts' | 'summary';

export const STEPS: { key: StepKey; label: string; path: string }[] = [
  { key: 'connection', label: '1. Connection', path: `${WIZARD_PATH}/connection` },
  { key: 'customers', label: '2. Map customers and items', path: `${WIZARD_PATH}/customers` },
  { key: 'alerts', label: '3. Map alerts to tickets', path: `${WIZARD_PATH}/alerts` },
  { key: 'summary', label: 'Summary', path: `${WIZARD_PATH}/summary` },
];

/** The path of a wizard step. */
export const stepPath = (key: StepKey) => STEPS.find((step) => step.key === key)!.path;

interface WizardContextValue {
  summary: IntegrationSummaryView;
  /** Read the summary again after a step saved something. */
  reloadSummary(): Promise<IntegrationSummaryView>;
}

const WizardContext = createContext<WizardContextValue | null>(null);

export function useWizard(): WizardContextValue {
  const value = useContext(WizardContext);
  if (!value) throw new Error('useWizard() needs the HaloPSA wizard above it.');
  return value;
}

/** Return why a step cannot be opened yet, or null when it can. */
export function lockedReason(step: StepKey, summary: IntegrationSummaryView): string | null {
  if (step === 'connection') return null;
  if (!summary.connection) return 'connect HaloPSA first';
  if (step === 'alerts' && summary.customers.mapped === 0) return 'map a customer first';
  return null;
}

/**
 * Return the step the wizard opens at: the summary once the configuration exists, otherwise
 * the first step that is not done.
 */
export function landingStep(summary: IntegrationSummaryView): StepKey {
  if (!summary.connection) return 'connection';
  if (summary.customers.mapped === 0) return 'customers';
  if (summary.alerts.perCustomer.length === 0) return 'alerts';
  return 'summary';
}

export function HaloPsaWizard() {
  const { halo } = useSignedIn();
  const { path } = useLocation();
  const [summary, setSummary] = useState<IntegrationSummaryView | null>(null);
  const [failure, setFailure] = useState<ApiError | Error | null>(null);

  const reloadSummary = useCallback(async () => {
    const next = await api.get<IntegrationSummaryView>(WIZARD_PATH);
    setSummary(next);
    return next;
  }, []);

  useEffect(() => {
    if (!halo.allowed) return;
    reloadSummary().catch((error: unknown) =>
      setFailure(error instanceof Error ? error : new Error(messageOf(error))),
    );
  }, [halo.allowed, reloadSummary]);

  useEffect(() => {
    if (summary && (path === WIZARD_PATH || path === `${WIZARD_PATH}/`)) {
      navigate(stepPath(landingStep(summary)), { replace: true });
    }
  }, [summary, path]);

  if (!halo.allowed) return <NoAccess access={halo} />;
  if (failure instanceof ApiError && failure.code === 'integration_disabled') {
    return <NoAccess access={{ allowed: false, reason: 'disabled' }} />;
  }
  if (failure instanceof ApiError && failure.status === 403) {
    return <NoAccess access={{ allowed: false, reason: 'permission' }} />;
  }
  if (failure) {
    return (
      <Notice kind="error" title="The HaloPSA integration could not be loaded">
        <p>{failure.message}</p>
        <button type="button" className="button" onClick={() => window.location.reload()}>
          Reload
        </button>
      </Notice>
    );
  }
  if (!summary) return <Progress label="Loading the HaloPSA integration…" />;

  const step = STEPS.find((candidate) => candidate.path === path);
  if (!step) {
    return path === WIZARD_PATH || path === `${WIZARD_PATH}/` ? null : <NotFoundPage />;
  }

  return (
    <WizardContext.Provider value={{ summary, reloadSummary }}>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li>
            <Link to="/integrations">Integrations</Link>
          </li>
          <li>HaloPSA</li>
        </ol>
      </nav>
      <nav aria-label="HaloPSA setup steps" className="steps">
        <ol>
          {STEPS.map((candidate) => {
            const reason = lockedReason(candidate.key, summary);
            return (
              <li key={candidate.key} className="steps__item">
                {reason ? (
                  <span className="steps__link steps__link--locked" aria-disabled="true">
                    {candidate.label} <span className="steps__note">({reason})</span>
                  </span>
                ) : (
                  <Link
                    to={candidate.path}
                    className="steps__link"
                    aria-current={candidate.key === step.key ? 'step' : undefined}
                  >
                    {candidate.label}
                  </Link>
                )}
              </li>
            );
          })}
        </ol>
      </nav>
      <StepPage step={step.key} summary={summary} />
    </WizardContext.Provider>
  );
}

function StepPage({ step, summary }: { step: StepKey; summary: IntegrationSummaryView }) {
  const reason = lockedReason(step, summary);
  if (reason) {
    const back = step === 'alerts' && summary.connection ? 'customers' : 'connection';
    return (
      <Notice kind="warning" title="This step is not open yet">
        <p>
          To open it, {reason}: <Link to={stepPath(back)}>go to that step</Link>.
        </p>
      </Notice>
    );
  }
  switch (step) {
    case 'connection':
      return <ConnectionStep />;
    case 'customers':
      return <MappingStep />;
    case 'alerts':
      return <AlertsStep />;
    case 'summary':
      return <SummaryStep />;
  }
}
