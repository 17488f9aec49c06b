// The page's words in English and French, chosen from the browser's preferred languages.

const MESSAGES = {
  en: {
    title: "Photo Shield",
    intro: "Every face is replaced with a solid colour, noise or a sticker and all metadata is removed, on this " +
      "computer. Your photos are not sent anywhere else.",
    fill: "Fill", fillSolid: "Solid colour", fillNoise: "Noise", fillSticker: "Sticker",
    sticker: "Sticker", stickerSmile: "Smiling face", stickerCat: "Cat", stickerHeart: "Heart",
    stickerStar: "Star", stickerFlower: "Flower",
    color: "Colour", margin: "Margin", format: "Format", formatSame: "Same as the photo",
    cover: "Cover", coverFaces: "Faces", coverPeople: "Whole people",
    drop: "Drop photos or videos here", or: "or", choose: "choose files",
    clear: "Clear the list", downloadAll: "Download all (zip)",
    before: "Before: faces found are outlined (this copy never leaves the page)",
    after: "After: protected. Drag on it to cover something more, click an outline to keep that face",
    beforeAlt: "The original photo, faces outlined", afterAlt: "The protected photo",
    noPreview: "This browser cannot show the original.",
    download: "Download the protected photo",
    protecting: "Protecting…", waiting: "Waiting…", cancel: "Cancel",
    badge: { waiting: "Waiting", protecting: "Protecting", done: "Protected", failed: "Not protected",
      cancelled: "Cancelled" },
    nouns: (photos, videos) => [photos ? `${photos} photo${photos > 1 ? "s" : ""}` : "",
      videos ? `${videos} video${videos > 1 ? "s" : ""}` : ""].filter(Boolean).join(" and "),
    statusWorking: (nouns) => `Protecting ${nouns}…`,
    statusDone: (nouns) => `${nouns} protected.`,
    statusFailed: (nouns) => `${nouns} not protected (the reason is below).`,
    statusCancelled: (nouns) => `${nouns} cancelled.`,
    unreachable: "Photo Shield's server is not reachable: it may have been stopped. Start Photo Shield again, " +
      "then reload this page.",
    unknownError: "Something went wrong; nothing was kept.",
    cancelled: "Cancelled: nothing was kept.",
    summary: (faces, added, kept, width, height, ms) => [
      `${faces === 1 ? "1 face" : `${faces} faces`} replaced`,
      added ? `${added} region${added > 1 ? "s" : ""} added` : "",
      kept ? `${kept} face${kept > 1 ? "s" : ""} kept as ${kept > 1 ? "they are" : "it is"}` : "",
    ].filter(Boolean).join(", ") + `, metadata removed (${width}×${height}, ${ms} ms).`,
    failed: (message) => `Not protected: ${message}`,
    restarted: "The server was restarted: reload this page.",
    busy: "The server stayed busy; try again in a moment.",
    zipFailed: (message) => `The archive could not be made: ${message}`,
    videoPhase: {
      uploading: (percent) => `Sending the video to Photo Shield… ${percent}%`,
      waiting: () => "Waiting for its turn…",
      opening: () => "Reading the video and looking for faces…",
      protecting: (percent) => `Protecting every frame… ${percent}%`,
    },
    videoAfter: "After: protected (every frame)",
    videoDownload: "Download the protected video",
    videoSummary: (width, height, frames) => `Faces replaced in every frame, metadata removed (${width}×${height}, ${frames} frames).`,
    editor: {},  // editor.js speaks English by itself
  },
  fr: {
    title: "Photo Shield",
    intro: "Chaque visage est remplacé par une couleur unie, du bruit ou un autocollant et toutes les " +
      "métadonnées sont supprimées, sur cet ordinateur. Vos photos ne sont envoyées nulle part ailleurs.",
    fill: "Remplissage", fillSolid: "Couleur unie", fillNoise: "Bruit", fillSticker: "Autocollant",
    sticker: "Autocollant", stickerSmile: "Visage souriant", stickerCat: "Chat", stickerHeart: "Cœur",
    stickerStar: "Étoile", stickerFlower: "Fleur",
    color: "Couleur", margin: "Marge", format: "Format", formatSame: "Comme la photo",
    cover: "Masquer", coverFaces: "Les visages", coverPeople: "Les personnes entières",
    drop: "Déposez des photos ou des vidéos ici", or: "ou", choose: "choisissez des fichiers",
    clear: "Vider la liste", downloadAll: "Tout télécharger (zip)",
    before: "Avant : les visages trouvés sont encadrés (cette copie ne quitte pas la page)",
    after: "Après : protégée. Tracez dessus pour masquer autre chose, cliquez sur un cadre pour garder ce visage",
    beforeAlt: "La photo d'origine, visages encadrés", afterAlt: "La photo protégée",
    noPreview: "Ce navigateur ne peut pas afficher l'original.",
    download: "Télécharger la photo protégée",
    protecting: "Protection en cours…", waiting: "En attente…", cancel: "Annuler",
    badge: { waiting: "En attente", protecting: "En cours", done: "Protégée", failed: "Non protégée",
      cancelled: "Annulée" },
    nouns: (photos, videos) => [photos ? `${photos} photo${photos > 1 ? "s" : ""}` : "",
      videos ? `${videos} vidéo${videos > 1 ? "s" : ""}` : ""].filter(Boolean).join(" et "),
    statusWorking: (nouns) => `Protection en cours : ${nouns}…`,
    statusDone: (nouns, n) => `${nouns} protégée${n > 1 ? "s" : ""}.`,
    statusFailed: (nouns, n) => `${nouns} non protégée${n > 1 ? "s" : ""} (la raison est indiquée plus bas).`,
    statusCancelled: (nouns, n) => `${nouns} annulée${n > 1 ? "s" : ""}.`,
    unreachable: "Le serveur de Photo Shield est injoignable : il a peut-être été arrêté. Relancez Photo Shield, " +
      "puis rechargez cette page.",
    unknownError: "Une erreur est survenue ; rien n'a été gardé.",
    serverErrors: {  // the server's messages are in English: in French, the reason from its error code
      unsupported_media_type: "Ce fichier n'est pas une photo ou une vidéo que Photo Shield sait lire (photos : " +
        "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF ; vidéos : MP4, MOV, M4V, WebM, MKV).",
      undecodable_image: "Cette photo ne peut pas être lue ; elle est peut-être tronquée ou abîmée.",
      undecodable_video: "Cette vidéo ne peut pas être lue ; elle est peut-être tronquée ou abîmée.",
      too_large: "Ce fichier dépasse les limites de Photo Shield (taille, nombre de pixels ou durée).",
      protection_failed: "La protection n'a pas pu être vérifiée ; rien n'a été gardé.",
      internal: "Erreur interne de Photo Shield ; rien n'a été gardé.",
    },
    cancelled: "Annulée : rien n'a été gardé.",
    summary: (faces, added, kept, width, height, ms) => [
      `${faces} visage${faces > 1 ? "s" : ""} remplacé${faces > 1 ? "s" : ""}`,
      added ? `${added} zone${added > 1 ? "s" : ""} ajoutée${added > 1 ? "s" : ""}` : "",
      kept ? `${kept} visage${kept > 1 ? "s" : ""} laissé${kept > 1 ? "s" : ""} tel${kept > 1 ? "s" : ""} quel${kept > 1 ? "s" : ""}` : "",
    ].filter(Boolean).join(", ") + `, métadonnées supprimées (${width}×${height}, ${ms} ms).`,
    failed: (message) => `Non protégée : ${message}`,
    restarted: "Le serveur a redémarré : rechargez cette page.",
    busy: "Le serveur est resté occupé ; réessayez dans un instant.",
    zipFailed: (message) => `L'archive n'a pas pu être créée : ${message}`,
    videoPhase: {
      uploading: (percent) => `Envoi de la vidéo à Photo Shield… ${percent} %`,
      waiting: () => "En attente de son tour…",
      opening: () => "Lecture de la vidéo et recherche des visages…",
      protecting: (percent) => `Protection de chaque image… ${percent} %`,
    },
    videoAfter: "Après : protégée (chaque image)",
    videoDownload: "Télécharger la vidéo protégée",
    videoSummary: (width, height, frames) => `Visages remplacés dans chaque image, métadonnées supprimées (${width}×${height}, ${frames} images).`,
    editor: {
      addRegion: "Ajouter une zone", undo: "Annuler",
      hint: "Tracez sur la photo pour masquer autre chose ; cliquez sur un visage encadré pour le laisser tel " +
        "quel. Clavier : sélectionnez une zone, les flèches la déplacent, Maj+flèches la redimensionnent, " +
        "Suppr l'enlève.",
      detection: "Visage détecté, remplacé (cliquez pour le garder tel quel)",
      keptDetection: "Visage détecté, gardé tel quel (cliquez pour le remplacer)",
      region: "Zone ajoutée (flèches : déplacer, Maj+flèches : redimensionner, Suppr : enlever)",
      working: "Protection en cours…",
      zoomHint: "Zoomez pour masquer un petit visage : molette, pincement, boutons + et −, ou touches + − 0. " +
        "Déplacez-vous avec deux doigts, le bouton Déplacer, Espace+glisser ou les flèches.",
      photo: "La photo protégée : faites glisser pour masquer autre chose ; + et − zooment, 0 l'affiche en " +
        "entier, les flèches la déplacent",
      zoomIn: "Zoomer", zoomOut: "Dézoomer", zoomFit: "Photo entière",
      zoomFitLabel: "Photo entière : afficher toute la photo",
      move: "Déplacer", moveLabel: "Déplacer la photo (glisser la déplace au lieu de tracer)", zoomLevel: "Zoom",
    },
  },
};

export const language = (navigator.languages || [navigator.language || "en"])
  .map((tag) => String(tag).toLowerCase().split("-")[0])
  .find((tag) => tag in MESSAGES) || "en";

export const text = MESSAGES[language];

/** Put the words of the chosen language into every element marked data-i18n (text) or data-i18n-alt. */
export function translatePage(root = document) {
  document.documentElement.lang = language;
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = text[node.dataset.i18n];
  for (const node of root.querySelectorAll("[data-i18n-alt]")) node.alt = text[node.dataset.i18nAlt];
}
